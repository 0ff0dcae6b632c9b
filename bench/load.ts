// Closed-loop HTTP load against `imgd serve` on 127.0.0.1: latency percentiles, throughput and status shares at
// several concurrencies, then text-query throughput with micro-batching on vs off.
// Usage: bun bench/load.ts [--vectors 100000] [--seconds 10] [--concurrency 10,50,200] [--batch-seconds 8] [--dtype i8|f16|f32]
//                           [--text-model test-clip|text-cost] [--batch-vectors N] [--binary dist/imgd]
// --text-model text-cost runs the micro-batching comparison with a text tower of CLIP ViT-B/32's compute and size
// (models/test/generate-text-cost.ts) instead of test-clip's, whose ~0.1 ms per text only shows per-call overhead.
// Prints per concurrency: req/s, p50/p95/p99 of all answers and p99 of the admitted (2xx) ones, the 2xx/429/5xx
// shares, and the server's RSS while serving; then the micro-batching throughput ratio (on / off, same run), and
// the text tower's single-query latency with padding to 77 vs to the query's own length.
// The index (random unit vectors with synthetic rows, the test-clip model) is built once under .bench/.
import { existsSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { TextEmbedder } from "../src/engine/embed.ts";
import { resolveModel, type ResolvedModel } from "../src/engine/models.ts";
import { TextBatcher } from "../src/engine/text-batcher.ts";
import { IndexStore, type NewImage, type VectorDType } from "../src/engine/store/index-store.ts";
import type { TokenPadding } from "../src/engine/types.ts";
import { generateQ8Cost, isQ8Cost, Q8_COST_SHAPES } from "../models/test/generate-q8-cost.ts";
import { generateTextCost } from "../models/test/generate-text-cost.ts";
import { BENCH_MODELS, flag, loadNote, percentile } from "./fixtures.ts";

const REPO = join(import.meta.dir, "..");
export const MODELS = join(REPO, "models");

/** Where the server finds `model`: test-clip ships with the repo, the cost stand-ins are generated under .bench/models. */
export function modelsDirFor(model: string): string {
  if (model === "test-clip") return MODELS;
  if (model === "text-cost") generateTextCost(BENCH_MODELS);
  else if (isQ8Cost(model)) generateQ8Cost(BENCH_MODELS, model);
  else throw new Error(`the model must be test-clip, text-cost or one of ${Object.keys(Q8_COST_SHAPES).join(", ")}, not ${model}`);
  return BENCH_MODELS;
}

/** An index of `count` random unit vectors, reused across runs. */
export async function benchIndex(count: number, dtype: VectorDType = "i8", modelName = "test-clip"): Promise<string> {
  const suffix = `${dtype === "f32" ? "" : `-${dtype}`}${modelName === "test-clip" ? "" : `-${modelName}`}`;
  const dir = join(REPO, ".bench", `load-${count}${suffix}`);
  const modelsDir = modelsDirFor(modelName);
  if (existsSync(join(dir, "done"))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const model = await resolveModel(modelName, [modelsDir]);
  const m = model.manifest;
  const store = await IndexStore.open(dir, { model: { name: m.name, dims: m.dims, preprocess: m.preprocess, tokenizer: m.tokenizer }, vectors: { dtype } });
  const t0 = performance.now();
  const chunk = 5000;
  for (let start = 0; start < count; start += chunk) {
    const n = Math.min(chunk, count - start);
    const vectors = new Float32Array(n * m.dims);
    for (let i = 0; i < vectors.length; i++) vectors[i] = Math.random() * 2 - 1;
    for (let r = 0; r < n; r++) {
      const row = vectors.subarray(r * m.dims, (r + 1) * m.dims);
      const norm = Math.hypot(...row);
      for (let d = 0; d < m.dims; d++) row[d]! /= norm;
    }
    const rows: NewImage[] = Array.from({ length: n }, (_, r) => ({
      path: `/bench/photos/${String(Math.floor((start + r) / 1000)).padStart(3, "0")}/img${start + r}.jpg`,
      size: 1_000_000 + r,
      mtimeMs: 1_700_000_000_000,
      imohash: `bench${start + r}`,
      width: 4000,
      height: 3000,
      takenAt: `2023-0${1 + (r % 9)}-1${r % 10}T12:00:00`,
      cameraMake: "Bench",
      cameraModel: "Synthetic",
      status: "indexed",
    }));
    await store.addBatch(rows, vectors);
  }
  await store.checkpoint();
  await store.close();
  await Bun.write(join(dir, "done"), "");
  console.log(`built ${count}-vector index in ${((performance.now() - t0) / 1000).toFixed(1)} s at ${dir}`);
  return dir;
}

export interface ServerChild {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

/** `imgd serve` as a child process, so client and server do not share an event loop. */
export async function spawnServer(index: string, extra: string[] = [], modelsDir = MODELS): Promise<ServerChild> {
  // --binary dist/imgd measures the compiled executable users run (its code is file-backed, not transpiled in memory).
  const binary = flag("--binary", "");
  const imgd = binary ? [binary] : [process.execPath, join(REPO, "src/cli/main.ts")];
  const proc = Bun.spawn(
    [...imgd, "serve", "--index", index, "--models", modelsDir, "--port", "0", "--log", "/dev/null", ...extra],
    { stdout: "ignore", stderr: "pipe" },
  );
  const reader = proc.stderr.getReader();
  let seen = "";
  let url = "";
  while (!seen.includes("imgd: ready")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`server exited before ready:\n${seen}`);
    seen += new TextDecoder().decode(value);
    url ||= seen.match(/serving (http:\/\/127\.0\.0\.1:\d+)/)?.[1] ?? "";
  }
  reader.releaseLock();
  void proc.stderr.pipeTo(new WritableStream());
  return {
    url,
    pid: proc.pid,
    stop: async () => {
      proc.kill("SIGTERM");
      await proc.exited;
    },
  };
}

const POPULAR = ["a cat", "sunset at the beach", "a yellow car", "red", "orange", "green forest", "blue sky", "a dog", "mountains", "snow", "a bicycle", "people at a party", "food on a plate", "a city at night", "flowers", "a boat", "an airplane", "a birthday cake", "the sea", "a black and white photo"];
let unique = 0;
/** Half popular (cache-friendly), half never seen before. */
export function nextQuery(uniqueShare = 0.5): string {
  return Math.random() < uniqueShare ? `photo number ${unique++} of something ${Math.random().toString(36).slice(2, 7)}` : POPULAR[Math.floor(Math.random() * POPULAR.length)]!;
}

export interface LoadResult {
  concurrency: number;
  seconds: number;
  requests: number;
  latenciesMs: number[];
  /** Latencies of the 2xx answers only: what an admitted request costs. */
  okLatenciesMs: number[];
  statuses: Map<number, number>;
  errors: number;
}

/** Resident memory of `pid` in MiB: total, anonymous (heap, buffers), file-backed (mapped files, code), and the peak so far (VmHWM). */
export function rssOf(pid: number): { rss: number; anon: number; file: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(status.match(new RegExp(`${key}:\\s+(\\d+)`))?.[1] ?? NaN) / 1024;
  return { rss: kb("VmRSS"), anon: kb("RssAnon"), file: kb("RssFile"), peak: kb("VmHWM") };
}

/** Cumulative counts of the server's own latency histogram for /api/search, by upper bound in seconds. */
export async function serverLatencyBuckets(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = new Map<string, number>();
  for (const m of text.matchAll(/imgd_http_request_duration_seconds_bucket\{route="\/api\/search",le="([^"]+)"\} (\d+)/g)) out.set(m[1]!, Number(m[2]));
  return out;
}

/**
 * The server's p99 for the requests between two scrapes, as the histogram bucket it falls in: time inside the app,
 * without the wait before the server reads a request or the client's own delays.
 */
export function serverP99Text(before: Map<string, number>, after: Map<string, number>): string {
  const count = (after.get("+Inf") ?? 0) - (before.get("+Inf") ?? 0);
  for (const [le, n] of after) {
    if (n - (before.get(le) ?? 0) >= 0.99 * count) return `server p99 <= ${le === "+Inf" ? "inf" : `${Number(le) * 1000} ms`}`;
  }
  return "server p99 n/a";
}

export function rssText(pid: number): string {
  const m = rssOf(pid);
  return `server RSS ${m.rss.toFixed(0)} MiB (anon ${m.anon.toFixed(0)}, file ${m.file.toFixed(0)})`;
}

/** `concurrency` clients, each sending its next request as soon as the previous one answers, for `seconds`. */
export async function closedLoop(url: string, concurrency: number, seconds: number, makePath: () => string): Promise<LoadResult> {
  const result: LoadResult = { concurrency, seconds, requests: 0, latenciesMs: [], okLatenciesMs: [], statuses: new Map(), errors: 0 };
  const deadline = performance.now() + seconds * 1000;
  const client = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      let retryAfterMs = 0;
      try {
        const res = await fetch(`${url}${makePath()}`);
        await res.arrayBuffer();
        result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1);
        if (res.status === 429) retryAfterMs = Number(res.headers.get("retry-after") ?? 1) * 1000;
        if (res.status >= 200 && res.status < 300) result.okLatenciesMs.push(performance.now() - t0);
      } catch {
        result.errors++;
      }
      result.latenciesMs.push(performance.now() - t0);
      result.requests++;
      // A polite client waits as told; one that comes back at once only measures how fast we can say no.
      if (retryAfterMs > 0) await Bun.sleep(retryAfterMs);
    }
  };
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, client));
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

export function summarise(r: LoadResult): string {
  const sorted = [...r.latenciesMs].sort((a, b) => a - b);
  const ok = [...r.okLatenciesMs].sort((a, b) => a - b);
  const share = (pred: (s: number) => boolean) => {
    const n = [...r.statuses].filter(([s]) => pred(s)).reduce((a, [, c]) => a + c, 0);
    return `${((100 * n) / Math.max(1, r.requests)).toFixed(1)}%`;
  };
  return [
    `c=${String(r.concurrency).padStart(3)}`,
    `${(r.requests / r.seconds).toFixed(0).padStart(6)} req/s`,
    `p50 ${percentile(sorted, 50).toFixed(1).padStart(6)} ms`,
    `p95 ${percentile(sorted, 95).toFixed(1).padStart(6)} ms`,
    `p99 ${percentile(sorted, 99).toFixed(1).padStart(6)} ms`,
    `(2xx p99 ${percentile(ok, 99).toFixed(1).padStart(6)} ms)`,
    `2xx ${share((s) => s >= 200 && s < 300)}`,
    `429 ${share((s) => s === 429)}`,
    `5xx ${share((s) => s >= 500)}`,
    `conn errors ${r.errors}`,
  ].join("  ");
}

/** p50 of one query at a time through the text tower, every query padded as `padding` says. */
async function singleQueryP50(model: ResolvedModel, padding: TokenPadding, texts: string[], threads: number): Promise<number> {
  const manifest = { ...model.manifest, tokenizer: { ...model.manifest.tokenizer, padding } };
  const embedder = await TextEmbedder.open({ ...model, manifest }, { threads });
  try {
    await embedder.embed([texts[0]!]);
    const ms: number[] = [];
    for (const text of texts) {
      const t0 = performance.now();
      await embedder.embed([text]);
      ms.push(performance.now() - t0);
    }
    return percentile(ms.sort((a, b) => a - b), 50);
  } finally {
    await embedder.close();
  }
}

/** What padding to the longest text saves a lone query: the same queries padded to 77 and to their own length. */
async function paddingLatencyLine(model: ResolvedModel, threads: number): Promise<string> {
  const texts = Array.from({ length: 40 }, () => nextQuery());
  const full = await singleQueryP50(model, "max_length", texts, threads);
  const longest = await singleQueryP50(model, "longest", texts, threads);
  return `${model.manifest.name} text tower, one query at a time (p50 of ${texts.length}): padded to 77 ${full.toFixed(1)} ms, to its length ${longest.toFixed(1)} ms, ratio ${(full / longest).toFixed(2)}x`;
}

if (import.meta.main) {
  const count = Number(flag("--vectors", "100000"));
  const seconds = Number(flag("--seconds", "10"));
  const levels = flag("--concurrency", "10,50,200").split(",").map(Number);
  const batchSeconds = Number(flag("--batch-seconds", "8"));
  const index = await benchIndex(count, flag("--dtype", "i8") as VectorDType);
  console.log(`${cpus().length} CPUs (${cpus()[0]?.model}); server is a child process; clients in this process; 127.0.0.1 only; ${loadNote()}`);

  const server = await spawnServer(index);
  console.log(`idle after start: ${rssText(server.pid)}`);
  try {
    console.log(`\nGET /api/search?q=... over ${count} vectors, k=20, half popular / half unique queries, ${seconds} s each:`);
    await closedLoop(server.url, 4, 1, () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`);
    for (const c of levels) {
      const before = await serverLatencyBuckets(server.url);
      const r = await closedLoop(server.url, c, seconds, () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`);
      console.log(`${summarise(r)}  ${serverP99Text(before, await serverLatencyBuckets(server.url))}  ${rssText(server.pid)}`);
    }
  } finally {
    await server.stop();
  }

  const textModel = flag("--text-model", "test-clip");
  const batchIndex = textModel === "test-clip" ? index : await benchIndex(Number(flag("--batch-vectors", "10000")), "f32", textModel);
  const textModels = modelsDirFor(textModel);
  console.log(`\ntext-query throughput (2xx/s), all queries unique (no cache hits), text tower ${textModel}, c=50, ${batchSeconds} s each:`);
  const rates: Record<string, number> = {};
  for (const [label, args] of [["batching on (3 ms, max 32)", []], ["batching off", ["--batch-wait-ms", "0"]]] as const) {
    const s = await spawnServer(batchIndex, [...args], textModels);
    try {
      await closedLoop(s.url, 4, 1, () => `/api/search?q=${encodeURIComponent(nextQuery(1))}&k=20`);
      const r = await closedLoop(s.url, 50, batchSeconds, () => `/api/search?q=${encodeURIComponent(nextQuery(1))}&k=20`);
      rates[label] = r.okLatenciesMs.length / r.seconds;
      console.log(`${label.padEnd(28)} ${summarise(r)}`);
    } finally {
      await s.stop();
    }
  }
  const [on, off] = Object.values(rates) as [number, number];
  console.log(`micro-batching text-query throughput over HTTP: on ${on.toFixed(1)}/s, off ${off.toFixed(1)}/s, ratio ${(on / off).toFixed(2)}x`);

  // The text tower alone, without HTTP and the catalog lookup in the way: 50 callers, one text each, back to back.
  const model = await resolveModel(textModel, [textModels]);
  const embedder = await TextEmbedder.open(model, { threads: Math.min(4, cpus().length) });
  const towerRate = async (batcher: TextBatcher) => {
    const t0 = performance.now();
    let n = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (performance.now() < t0 + 3000) {
        await batcher.embed(nextQuery(1));
        n++;
      }
    }));
    // The last batch may end well after the 3 s (a batch of 32 costly texts takes seconds): divide by the real time.
    return (n * 1000) / (performance.now() - t0);
  };
  const towerOn = await towerRate(new TextBatcher(embedder, { dims: model.manifest.dims }));
  const towerOff = await towerRate(new TextBatcher(embedder, { dims: model.manifest.dims, maxWaitMs: 0 }));
  console.log(`${textModel} text tower alone, 50 callers: batching on ${towerOn.toFixed(0)} texts/s, off ${towerOff.toFixed(0)} texts/s, ratio ${(towerOn / towerOff).toFixed(2)}x`);
  await embedder.close();
  console.log(await paddingLatencyLine(model, Math.min(4, cpus().length)));
}
