// `imgd bench ingest` against a real `imgd serve` on 127.0.0.1: starts the server on a fresh index, runs the load
// generator as a separate process, prints its report lines and summary (img/s, req/s, batch latency p50/p95/p99,
// success rate, the server's RSS over the run), then stops the server.
//
//   bun bench/ingest-serve.ts [--images 64] [--size 1500x1000] [--model test-clip|vit-cost] [--duration 20]
//                             [--workers 16] [--batch 64] [--queue 1024] [--report 10]
//
// The images are camera-style JPEGs tiled from the bundled photos (bench/fixtures.ts cameraJpegs); repeats carry
// a pass marker so the server indexes them as new files. vit-cost is a ViT-B/32-sized stand-in for CLIP's cost.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runIndex } from "../src/engine/index-pipeline.ts";
import { BENCH_MODELS, cameraJpegs, flag, loadNote, PHOTOS, REPO, testClipModel, vitCostModel } from "./fixtures.ts";

const [width, height] = flag("--size", "1500x1000").split("x").map(Number) as [number, number];
const images = Number(flag("--images", "64"));
const modelName = flag("--model", "test-clip");
const passThrough = ["--workers", "--batch", "--queue", "--report", "--duration"].flatMap((f) => [f, flag(f, { "--workers": "16", "--batch": "64", "--queue": "1024", "--report": "10", "--duration": "20" }[f]!)]);

const model = modelName === "vit-cost" ? await vitCostModel() : await testClipModel();
const modelsDir = modelName === "vit-cost" ? BENCH_MODELS : join(REPO, "models");
const jpegs = await cameraJpegs(images, width, height);
const root = mkdtempSync(join(tmpdir(), "imgd-bench-ingest-"));
const index = join(root, "index");
// An index that knows one photo, so the server starts on an existing index like a user's.
mkdirSync(join(root, "seed"));
await Bun.write(join(root, "seed", "orange.jpg"), Bun.file(join(PHOTOS, "orange.jpg")));
await runIndex({ roots: [join(root, "seed")], indexDir: index, model, batchSize: 8, threads: 1 });

const cli = [process.execPath, join(REPO, "src/cli/main.ts")];
const server = Bun.spawn([...cli, "serve", "--index", index, "--models", modelsDir, "--host", "127.0.0.1", "--port", "0"], {
  stdout: "ignore",
  stderr: "pipe",
});
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    server.kill();
    rmSync(root, { recursive: true, force: true });
    process.exit(130);
  });
}
try {
  const url = await serverUrl(server.stderr);
  await waitReady(url);
  console.log(`imgd bench ingest against imgd serve at ${url}: ${jpegs.files.length} JPEGs ${width}x${height} (avg ${(jpegs.avgBytes / 1024).toFixed(0)} KiB), model ${modelName}`);
  console.log(`${loadNote()} (2 cores shared with the server: figures under contention are low)`);
  const bench = Bun.spawn([...cli, "bench", "ingest", "--dir", jpegs.dir, "--url", url, ...passThrough], { stdout: "inherit", stderr: "inherit" });
  process.exitCode = await bench.exited;
} finally {
  server.kill();
  await server.exited;
  rmSync(root, { recursive: true, force: true });
}

/** The address imgd serve prints on stderr; the rest of its stderr is read and dropped so the pipe never fills. */
async function serverUrl(stderr: ReadableStream<Uint8Array>): Promise<string> {
  let text = "";
  const decoder = new TextDecoder();
  const reader = stderr.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    text += decoder.decode(r.value);
    const m = /serving (http:\/\/127\.0\.0\.1:\d+)/.exec(text);
    if (!m) continue;
    void (async () => {
      while (!(await reader.read()).done);
    })();
    return m[1]!;
  }
  throw new Error(`imgd serve exited before printing its address:\n${text}`);
}

async function waitReady(url: string): Promise<void> {
  for (const t0 = performance.now(); performance.now() - t0 < 120_000; await Bun.sleep(200)) {
    if ((await fetch(`${url}/ready`).catch(() => null))?.status === 200) return;
  }
  throw new Error(`${url}/ready did not turn 200 within 120 s`);
}
