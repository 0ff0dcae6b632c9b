// A load generator for POST /api/ingest: one reader fills a bounded queue with multipart batches read from a
// folder (repeating the file list while --duration asks for more), `workers` clients post them concurrently, and
// every `reportEverySec` a progress line is emitted; at the end a summary with img/s, req/s, batch latency
// percentiles, the success rate and the server's RSS (from its /metrics) over the run.
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { BoundedQueue } from "../engine/async-queue.ts";
import { scanRoots } from "../engine/scan.ts";
import { percentile } from "./percentile.ts";
import { scrapeMetric } from "./server-metrics.ts";

export interface IngestLoadOptions {
  dir: string;
  /** The server's base URL, e.g. http://127.0.0.1:8080. */
  url: string;
  workers: number;
  /** Images per request. */
  batch: number;
  /** Images read ahead of the workers (bounds the client's memory). */
  queue: number;
  reportEverySec: number;
  /**
   * Keep sending for this long, repeating the files; without it every file is sent once. A repeat carries a few
   * bytes after the image data (decoders ignore them), so the server indexes it as a new file instead of skipping
   * it as an exact duplicate: the run measures ingest, not the duplicate check. At the deadline requests still
   * in flight are cut off (counted apart, not as failures), so the run ends on time.
   */
  durationSec?: number;
  token?: string;
  onReport?: (progress: IngestProgress) => void;
}

export interface IngestProgress {
  elapsedSec: number;
  /** Images in answered requests so far. */
  images: number;
  requests: number;
  /** Rates and latencies over the last interval. */
  imgPerSec: number;
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  serverRssBytes: number | null;
}

export interface IngestSummary {
  files: number;
  batchSize: number;
  elapsedSec: number;
  requests: { sent: number; ok: number; failed: number; throttled: number; cutOff: number };
  /** `answered`: images in requests the server answered; the rest were cut off or failed in transit. */
  images: { sent: number; answered: number; processed: number; duplicates: number; nearDuplicates: number; errors: number };
  imgPerSec: number;
  reqPerSec: number;
  latencyMs: { p50: number; p95: number; p99: number; max: number };
  /** Requests answered 200 over requests answered or failed (a retried 429 counts once, by its final answer). */
  successRate: number;
  serverRss: { startBytes: number; peakBytes: number; endBytes: number; samples: number } | null;
  /** The first few distinct failures, for the operator. */
  failures: string[];
}

const RSS_METRIC = "process_resident_memory_bytes";
const RSS_SAMPLE_MS = 1_000;
const MAX_RETRY_WAIT_MS = 5_000;

interface Batch {
  form: FormData;
  images: number;
}

export async function runIngestLoad(opts: IngestLoadOptions): Promise<IngestSummary> {
  const base = new URL(opts.url);
  if (base.protocol !== "http:" && base.protocol !== "https:") throw new Error(`--url must be http(s)://HOST:PORT, got ${opts.url}`);
  const { files } = await scanRoots([opts.dir]);
  if (files.length === 0) throw new Error(`no images under ${opts.dir}`);
  const headers: Record<string, string> = opts.token ? { Authorization: `Bearer ${opts.token}` } : {};
  const ingestUrl = new URL("/api/ingest", base);

  const rss: number[] = [];
  const sampleRss = async () => {
    const v = await scrapeMetric(base.href, RSS_METRIC, headers);
    if (v !== null) rss.push(v);
    return v;
  };
  await sampleRss();

  const t0 = performance.now();
  const deadline = opts.durationSec === undefined ? Infinity : t0 + opts.durationSec * 1000;
  const queue = new BoundedQueue<Batch>(Math.max(1, Math.floor(opts.queue / opts.batch)));
  const stop = new AbortController();
  const stopTimer = Number.isFinite(deadline) ? setTimeout(() => stop.abort(), deadline - t0) : undefined;
  const summary: IngestSummary = {
    files: files.length,
    batchSize: opts.batch,
    elapsedSec: 0,
    requests: { sent: 0, ok: 0, failed: 0, throttled: 0, cutOff: 0 },
    images: { sent: 0, answered: 0, processed: 0, duplicates: 0, nearDuplicates: 0, errors: 0 },
    imgPerSec: 0,
    reqPerSec: 0,
    latencyMs: { p50: NaN, p95: NaN, p99: NaN, max: NaN },
    successRate: 0,
    serverRss: null,
    failures: [],
  };
  const latencies: number[] = [];
  let answeredImages = 0;
  const fail = (why: string) => {
    summary.requests.failed++;
    if (summary.failures.length < 5 && !summary.failures.includes(why)) summary.failures.push(why);
  };

  const produce = async () => {
    try {
      const repeat = opts.durationSec !== undefined;
      for (let pass = 0; pass === 0 || (repeat && performance.now() < deadline); pass++) {
        const marker = pass === 0 ? [] : [`\nimgd-bench pass ${pass}\n`];
        for (let i = 0; i < files.length && performance.now() < deadline; i += opts.batch) {
          const form = new FormData();
          const chunk = files.slice(i, i + opts.batch);
          for (const f of chunk) form.append("files", new File([await readFile(f.path), ...marker], basename(f.path)));
          await queue.put({ form, images: chunk.length });
        }
      }
    } finally {
      queue.close();
    }
  };

  const post = async (batch: Batch) => {
    summary.requests.sent++;
    summary.images.sent += batch.images;
    for (;;) {
      // Latency is the answered attempt's: time spent waiting out a 429 is counted in `throttled`, not here.
      const start = performance.now();
      let res: Response;
      try {
        res = await fetch(ingestUrl, { method: "POST", body: batch.form, headers, signal: stop.signal });
      } catch (err) {
        if (stop.signal.aborted) summary.requests.cutOff++;
        else fail(`request failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      if (res.status === 429) {
        await res.body?.cancel();
        summary.requests.throttled++;
        const wait = Math.min(MAX_RETRY_WAIT_MS, 1000 * (Number(res.headers.get("Retry-After")) || 1));
        await Bun.sleep(Math.max(0, Math.min(wait, deadline - performance.now())));
        if (stop.signal.aborted) {
          summary.requests.cutOff++;
          return;
        }
        continue;
      }
      let text: string;
      try {
        text = await res.text();
      } catch (err) {
        if (stop.signal.aborted) summary.requests.cutOff++;
        else fail(`reading the answer failed: ${err instanceof Error ? err.message : String(err)}`);
        return;
      }
      const ms = performance.now() - start;
      latencies.push(ms);
      interval.latencies.push(ms);
      answeredImages += batch.images;
      let body: { processed?: number; duplicates?: number; near_duplicates?: number; errors_count?: number; error?: string } = {};
      try {
        body = JSON.parse(text);
      } catch {
        // A non-JSON answer is reported below by its status.
      }
      summary.images.processed += body.processed ?? 0;
      summary.images.duplicates += body.duplicates ?? 0;
      summary.images.nearDuplicates += body.near_duplicates ?? 0;
      summary.images.errors += body.errors_count ?? 0;
      if (res.status === 200) summary.requests.ok++;
      else fail(`HTTP ${res.status}: ${body.error ?? text.slice(0, 200)}`);
      return;
    }
  };

  // After the deadline no new request starts; the ones in flight finish, and what is still queued is dropped.
  const work = async () => {
    for (let batch = await queue.take(); batch !== undefined && performance.now() < deadline; batch = await queue.take()) await post(batch);
  };

  let interval = { start: t0, images: 0, requests: 0, latencies: [] as number[] };
  const report = async () => {
    const now = performance.now();
    const secs = (now - interval.start) / 1000;
    const lat = interval.latencies.sort((a, b) => a - b);
    const requests = latencies.length;
    const progress: IngestProgress = {
      elapsedSec: (now - t0) / 1000,
      images: answeredImages,
      requests,
      imgPerSec: (answeredImages - interval.images) / secs,
      reqPerSec: (requests - interval.requests) / secs,
      p50Ms: percentile(lat, 50),
      p99Ms: percentile(lat, 99),
      failed: summary.requests.failed,
      serverRssBytes: rss.length > 0 ? rss[rss.length - 1]! : null,
    };
    interval = { start: now, images: answeredImages, requests, latencies: [] };
    opts.onReport?.(progress);
  };
  const reporter = setInterval(report, opts.reportEverySec * 1000);
  const sampler = setInterval(sampleRss, RSS_SAMPLE_MS);
  try {
    const producing = produce();
    await Promise.all(Array.from({ length: opts.workers }, work));
    queue.close(); // frees a reader blocked on a full queue once the workers stopped at the deadline
    await producing;
  } finally {
    clearInterval(reporter);
    clearInterval(sampler);
    clearTimeout(stopTimer);
  }
  const elapsedMs = performance.now() - t0;
  await sampleRss();

  latencies.sort((a, b) => a - b);
  summary.elapsedSec = elapsedMs / 1000;
  summary.images.answered = answeredImages;
  summary.imgPerSec = answeredImages / summary.elapsedSec;
  summary.reqPerSec = latencies.length / summary.elapsedSec;
  summary.latencyMs = { p50: percentile(latencies, 50), p95: percentile(latencies, 95), p99: percentile(latencies, 99), max: latencies[latencies.length - 1] ?? NaN };
  const settled = summary.requests.ok + summary.requests.failed;
  summary.successRate = settled === 0 ? 0 : summary.requests.ok / settled;
  if (rss.length > 0) summary.serverRss = { startBytes: rss[0]!, peakBytes: Math.max(...rss), endBytes: rss[rss.length - 1]!, samples: rss.length };
  return summary;
}
