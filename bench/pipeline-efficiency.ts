// Pipeline efficiency: `imgd index` images/s on camera-sized JPEGs divided by the bare model's images/s on ready
// tensors (same model, threads and batch size, in the same process run). 1.0 would mean reading, hashing, decoding,
// preprocessing and writing are completely hidden behind inference; the goal is >= 0.90.
// Usage: bun bench/pipeline-efficiency.ts [--count 120] [--size 3000x2000] [--threads 2] [--batch 32] [--rounds 2]
import { rmSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { MACS_PER_IMAGE } from "../models/test/generate-vit-cost.ts";
import { decodeImage } from "../src/engine/decode.ts";
import { ImageEmbedder } from "../src/engine/embed.ts";
import { runIndex, type IndexReport } from "../src/engine/index-pipeline.ts";
import type { ResolvedModel } from "../src/engine/models.ts";
import { loadSharp } from "../src/engine/native.ts";
import { preprocessInto } from "../src/engine/preprocess.ts";
import { formatStageTable } from "../src/engine/stage-timings.ts";
import { BENCH_DIR, cameraJpegs, flag, loadNote, prng, vitCostModel, type JpegFolder } from "./fixtures.ts";

const count = Number(flag("--count", "120"));
const [width, height] = flag("--size", "3000x2000").split("x").map(Number) as [number, number];
const threads = Number(flag("--threads", "2"));
const batchSize = Number(flag("--batch", "32"));
const rounds = Number(flag("--rounds", "2"));

interface Rate {
  imagesPerSecond: number;
  /** Process CPU time (user + system) per image: what the cores actually spent, overlap or not. */
  cpuMsPerImage: number;
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** The model alone: `count` images in batches of `batchSize` from one pre-filled tensor, after one warm-up batch. */
async function bareModel(embedder: ImageEmbedder, tensorSize: number): Promise<Rate> {
  const rand = prng(7);
  const pixels = new Float32Array(batchSize * tensorSize);
  for (let i = 0; i < pixels.length; i++) pixels[i] = rand() * 4 - 2;
  await embedder.embed(pixels, batchSize);
  const c0 = cpuMs();
  const t0 = performance.now();
  for (let done = 0; done < count; done += batchSize) {
    const n = Math.min(batchSize, count - done);
    await embedder.embed(pixels.subarray(0, n * tensorSize), n);
  }
  const ms = performance.now() - t0;
  return { imagesPerSecond: (count * 1000) / ms, cpuMsPerImage: (cpuMs() - c0) / count };
}

/** A cold index of the folder, as `imgd index` runs it; `embedder` given means a pre-opened, warmed session. */
async function pipeline(model: ResolvedModel, folder: JpegFolder, embedder?: ImageEmbedder): Promise<{ rate: Rate; report: IndexReport }> {
  const indexDir = join(BENCH_DIR, "pipeline-efficiency-index");
  rmSync(indexDir, { recursive: true, force: true });
  const c0 = cpuMs();
  const report = await runIndex({ roots: [folder.dir], indexDir, model, batchSize, threads, embedder });
  if (report.embedded !== count) throw new Error(`indexed ${report.embedded} of ${count} images (${report.failed} failed)`);
  return { rate: { imagesPerSecond: report.imagesPerSecond, cpuMsPerImage: (cpuMs() - c0) / count }, report };
}

/** Decode + preprocess alone, one image at a time: the CPU the pipeline must find beside inference. */
async function decodeCost(model: ResolvedModel, folder: JpegFolder): Promise<{ wallMsPerImage: number; cpuMsPerImage: number }> {
  const spec = model.manifest.preprocess;
  const out = new Float32Array(3 * spec.size * spec.size);
  const files = await Promise.all(folder.files.map((f) => Bun.file(f).bytes()));
  for (const bytes of files.slice(0, 3)) preprocessInto(await decodeImage(bytes, { targetShortSide: spec.size }), spec, out, 0);
  const c0 = cpuMs();
  const t0 = performance.now();
  for (const bytes of files) preprocessInto(await decodeImage(bytes, { targetShortSide: spec.size }), spec, out, 0);
  return { wallMsPerImage: (performance.now() - t0) / files.length, cpuMsPerImage: (cpuMs() - c0) / files.length };
}

const fmt = (r: Rate) => `${r.imagesPerSecond.toFixed(2).padStart(6)} img/s  (${r.cpuMsPerImage.toFixed(0)} CPU-ms/img)`;

const model = await vitCostModel();
const folder = await cameraJpegs(count, width, height);
const spec = model.manifest.preprocess;
const tensorSize = 3 * spec.size * spec.size;
console.log(
  `${count} JPEGs of ${width}x${height} (${(folder.avgBytes / 1e6).toFixed(2)} MB avg, 2x2 tiles of upscaled ${"../shared/photos"} + grain)` +
    `${folder.built ? ", just generated" : ""}, cached in ${folder.dir} (warm page cache)`,
);
console.log(
  `model vit-cost (CLIP ViT-B/32 image-tower compute, ${(MACS_PER_IMAGE / 1e9).toFixed(2)} GMACs/img, random weights); ` +
    `threads ${threads}, batch ${batchSize}, prefetch default (threads + 2); ${cpus().length} CPUs (${cpus()[0]?.model.trim()}); ` +
    `sharp concurrency ${loadSharp().concurrency()}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"}; ${rounds} rounds`,
);

console.log(`start: ${loadNote()}`);

const embedder = await ImageEmbedder.open(model, { threads });
const bare: Rate[] = [];
const cold: { rate: Rate; report: IndexReport }[] = [];
const warm: { rate: Rate; report: IndexReport }[] = [];
try {
  for (let r = 0; r < rounds; r++) {
    // Interleaved so drift (thermal, noisy neighbours) hits both sides of the ratio alike.
    bare.push(await bareModel(embedder, tensorSize));
    cold.push(await pipeline(model, folder));
    warm.push(await pipeline(model, folder, embedder));
    console.log(
      `round ${r + 1}: bare ${fmt(bare[r]!)} | index ${fmt(cold[r]!.rate)} | index, pre-opened session ${fmt(warm[r]!.rate)}`,
    );
  }
} finally {
  await embedder.close();
}
const decode = await decodeCost(model, folder);

const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const bareRate = mean(bare.map((b) => b.imagesPerSecond));
const coldRate = mean(cold.map((c) => c.rate.imagesPerSecond));
const warmRate = mean(warm.map((c) => c.rate.imagesPerSecond));
const bareCpu = mean(bare.map((b) => b.cpuMsPerImage));
const coldCpu = mean(cold.map((c) => c.rate.cpuMsPerImage));

console.log(`\nbare model on ready tensors:            ${bareRate.toFixed(2)} img/s`);
console.log(`imgd index (runIndex, own session):     ${coldRate.toFixed(2)} img/s   ratio ${(coldRate / bareRate).toFixed(3)}`);
console.log(`imgd index (pre-opened warm session):   ${warmRate.toFixed(2)} img/s   ratio ${(warmRate / bareRate).toFixed(3)}`);
console.log(
  `CPU per image: bare ${bareCpu.toFixed(0)} ms, index ${coldCpu.toFixed(0)} ms; decode+preprocess alone ` +
    `${decode.cpuMsPerImage.toFixed(1)} CPU-ms (${decode.wallMsPerImage.toFixed(1)} ms wall) per image, one at a time`,
);
console.log(
  `ceiling if the cores were the only limit: bare CPU / (bare CPU + decode CPU) = ` +
    `${(bareCpu / (bareCpu + decode.cpuMsPerImage)).toFixed(3)}`,
);
console.log(`end: ${loadNote()}`);
const last = cold[cold.length - 1]!.report;
console.log(`\nper-stage busy time, last runIndex (own session); stages overlap, so % wall can sum past 100:`);
console.log(formatStageTable(last.stages, last.wallMs));
