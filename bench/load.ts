// Closed-loop HTTP load against `imgd serve` on 127.0.0.1: latency percentiles, throughput and status shares at
// several concurrencies, then text-query throughput with micro-batching on vs off.
// Usage: bun bench/load.ts [--vectors 100000] [--seconds 10] [--concurrency 10,50,200] [--batch-seconds 8]
// The index (random unit vectors with synthetic rows, the test-clip model) is built once under .bench/.
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { TextEmbedder } from "../src/engine/embed.ts";
import { modelSearchDirs, resolveModel } from "../src/engine/models.ts";
import { TextBatcher } from "../src/engine/text-batcher.ts";
import { IndexStore, type NewImage } from "../src/engine/store/index-store.ts";
import { flag, percentile } from "./fixtures.ts";

const REPO = join(import.meta.dir, "..");
export const MODELS = join(REPO, "models");

/** An index of `count` random unit vectors, reused across runs. */
export async function benchIndex(count: number): Promise<string> {
  const dir = join(REPO, ".bench", `load-${count}`);
  if (existsSync(join(dir, "done"))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const m = model.manifest;
  const store = await IndexStore.open(dir, { model: { name: m.name, dims: m.dims, preprocess: m.preprocess, tokenizer: m.tokenizer } });
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
export async function spawnServer(index: string, extra: string[] = []): Promise<ServerChild> {
  const proc = Bun.spawn(
    [process.execPath, join(REPO, "src/cli/main.ts"), "serve", "--index", index, "--models", MODELS, "--port", "0", "--log", "/dev/null", ...extra],
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
  statuses: Map<number, number>;
  errors: number;
}

/** `concurrency` clients, each sending its next request as soon as the previous one answers, for `seconds`. */
export async function closedLoop(url: string, concurrency: number, seconds: number, makePath: () => string): Promise<LoadResult> {
  const result: LoadResult = { concurrency, seconds, requests: 0, latenciesMs: [], statuses: new Map(), errors: 0 };
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
    `2xx ${share((s) => s >= 200 && s < 300)}`,
    `429 ${share((s) => s === 429)}`,
    `5xx ${share((s) => s >= 500)}`,
    `conn errors ${r.errors}`,
  ].join("  ");
}

if (import.meta.main) {
  const count = Number(flag("--vectors", "100000"));
  const seconds = Number(flag("--seconds", "10"));
  const levels = flag("--concurrency", "10,50,200").split(",").map(Number);
  const batchSeconds = Number(flag("--batch-seconds", "8"));
  const index = await benchIndex(count);
  console.log(`${cpus().length} CPUs (${cpus()[0]?.model}); server is a child process; clients in this process; 127.0.0.1 only`);

  const server = await spawnServer(index);
  try {
    console.log(`\nGET /api/search?q=... over ${count} vectors, k=20, half popular / half unique queries, ${seconds} s each:`);
    await closedLoop(server.url, 4, 1, () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`);
    for (const c of levels) {
      console.log(summarise(await closedLoop(server.url, c, seconds, () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`)));
    }
  } finally {
    await server.stop();
  }

  console.log(`\ntext-query throughput, all queries unique (no cache hits), c=50, ${batchSeconds} s each:`);
  const rates: Record<string, number> = {};
  for (const [label, args] of [["batching on (3 ms, max 32)", []], ["batching off", ["--batch-wait-ms", "0"]]] as const) {
    const s = await spawnServer(index, [...args]);
    try {
      await closedLoop(s.url, 4, 1, () => `/api/search?q=${encodeURIComponent(nextQuery(1))}&k=20`);
      const r = await closedLoop(s.url, 50, batchSeconds, () => `/api/search?q=${encodeURIComponent(nextQuery(1))}&k=20`);
      rates[label] = r.requests / r.seconds;
      console.log(`${label.padEnd(28)} ${summarise(r)}`);
    } finally {
      await s.stop();
    }
  }
  const [on, off] = Object.values(rates) as [number, number];
  console.log(`micro-batching throughput ratio over HTTP (on / off): ${(on / off).toFixed(2)}x`);

  // The text tower alone, without HTTP and the catalog lookup in the way: 50 callers, one text each, back to back.
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const embedder = await TextEmbedder.open(model, { threads: Math.min(4, cpus().length) });
  const towerRate = async (batcher: TextBatcher) => {
    const deadline = performance.now() + 3000;
    let n = 0;
    await Promise.all(Array.from({ length: 50 }, async () => {
      while (performance.now() < deadline) {
        await batcher.embed(nextQuery(1));
        n++;
      }
    }));
    return n / 3;
  };
  const towerOn = await towerRate(new TextBatcher(embedder, { dims: model.manifest.dims }));
  const towerOff = await towerRate(new TextBatcher(embedder, { dims: model.manifest.dims, maxWaitMs: 0 }));
  console.log(`text tower alone, 50 callers: batching on ${towerOn.toFixed(0)} texts/s, off ${towerOff.toFixed(0)} texts/s, ratio ${(towerOn / towerOff).toFixed(2)}x`);
  await embedder.close();
}
