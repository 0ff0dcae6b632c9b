// What the benchmarks share: flags, percentiles, camera-sized JPEGs made from the bundled photos, the vit-cost
// model, and synthetic indexes of random unit vectors. Everything expensive is built once under .bench/ and reused.
import { mulberry32 } from "../src/engine/seeded-random.ts";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { loadavg } from "node:os";
import { join } from "node:path";
import { generateVitCost } from "../models/test/generate-vit-cost.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../src/engine/models.ts";
import { loadSharp } from "../src/engine/native.ts";
import type { NewImage, VectorDType } from "../src/engine/store/index-store.ts";

export const REPO = join(import.meta.dir, "..");
export const BENCH_DIR = join(REPO, ".bench");
export const BENCH_MODELS = join(BENCH_DIR, "models");
export const PHOTOS = join(REPO, "..", "shared", "photos");

export function flag(name: string, fallback: string): string {
  const args = process.argv.slice(2);
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
}

export { percentile } from "../src/bench-client/percentile.ts";
import { percentile } from "../src/bench-client/percentile.ts";

export function latencySummary(samplesMs: number[]): string {
  const s = [...samplesMs].sort((a, b) => a - b);
  const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1)).padStart(7);
  return `n=${String(s.length).padStart(4)}  p50 ${f(percentile(s, 50))} ms  p99 ${f(percentile(s, 99))} ms  max ${f(s[s.length - 1]!)} ms`;
}

/** Other processes share these cores; a load average well above the thread count means the figures are noisy. */
export function loadNote(): string {
  return `load average ${loadavg().map((l) => l.toFixed(2)).join(" ")}`;
}

// Seeded, so every run builds the same fixtures.
export const prng = mulberry32;

export interface JpegFolder {
  dir: string;
  files: string[];
  width: number;
  height: number;
  avgBytes: number;
  built: boolean;
}

/**
 * `count` distinct camera-sized JPEGs: each tiles four of the bundled photos (up to 1 MP) upscaled into a 2x2
 * grid, flipped and brightened per image, with film-grain noise so the entropy-coded size is that of a real photo
 * rather than of smooth upscaled pixels. Camera make/model go into EXIF so the pipeline's EXIF parse has work too.
 */
export async function cameraJpegs(count: number, width: number, height: number): Promise<JpegFolder> {
  const dir = join(BENCH_DIR, `jpegs-${width}x${height}-${count}`);
  const done = join(dir, "done");
  let built = false;
  if (!existsSync(done)) {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const sharp = loadSharp();
    const sources = readdirSync(PHOTOS)
      .filter((f) => /\.(jpe?g|png)$/i.test(f))
      .sort();
    const tw = Math.floor(width / 2);
    const th = Math.floor(height / 2);
    const tiles = await Promise.all(
      sources.map((f) => sharp(join(PHOTOS, f)).removeAlpha().toColourspace("srgb").resize(tw, th, { fit: "cover" }).png().toBuffer()),
    );
    const grain = await sharp({ create: { width, height, channels: 3, background: "#808080", noise: { type: "gaussian", mean: 128, sigma: 14 } } })
      .png()
      .toBuffer();
    for (let i = 0; i < count; i++) {
      const pick = (k: number) => tiles[(i + k * 5 + Math.floor(i / sources.length)) % tiles.length]!;
      const canvas = await sharp({ create: { width, height, channels: 3, background: "#000000" } })
        .composite([
          { input: pick(0), left: 0, top: 0 },
          { input: pick(1), left: tw, top: 0 },
          { input: pick(2), left: 0, top: th },
          { input: pick(3), left: tw, top: th },
        ])
        .png({ compressionLevel: 0 })
        .toBuffer();
      const pipeline = sharp(canvas)
        .composite([{ input: grain, blend: "soft-light" }])
        .modulate({ brightness: 0.9 + 0.2 * ((i * 37) % 100) / 100 });
      if (i % 2 === 1) pipeline.flop();
      const jpeg = await pipeline
        .withExif({ IFD0: { Make: "imgd-bench", Model: `tiled ${width}x${height}` } })
        .jpeg({ quality: 90 })
        .toBuffer();
      writeFileSync(join(dir, `IMG_${String(i).padStart(4, "0")}.jpg`), jpeg);
    }
    writeFileSync(done, `${count} JPEGs ${width}x${height} tiled from ${PHOTOS}\n`);
    built = true;
  }
  const files = readdirSync(dir)
    .filter((f) => f.endsWith(".jpg"))
    .sort()
    .map((f) => join(dir, f));
  const avgBytes = files.reduce((s, f) => s + statSync(f).size, 0) / files.length;
  return { dir, files, width, height, avgBytes, built };
}

/** The vit-cost stand-in for CLIP ViT-B/32, generated under .bench/models if missing or stale. */
export async function vitCostModel(): Promise<ResolvedModel> {
  generateVitCost(BENCH_MODELS);
  return resolveModel("vit-cost", [BENCH_MODELS]);
}

export async function testClipModel(): Promise<ResolvedModel> {
  return resolveModel("test-clip", modelSearchDirs(join(REPO, "models")));
}

/** `count` random unit vectors of `dims`, seeded. */
export function randomUnitVectors(count: number, dims: number, rand: () => number): Float32Array {
  const v = new Float32Array(count * dims);
  for (let i = 0; i < v.length; i++) v[i] = rand() * 2 - 1;
  for (let row = 0; row < v.length; row += dims) {
    let sum = 0;
    for (let i = row; i < row + dims; i++) sum += v[i]! * v[i]!;
    const inv = 1 / Math.sqrt(sum);
    for (let i = row; i < row + dims; i++) v[i]! *= inv;
  }
  return v;
}

export interface SyntheticIndex {
  dir: string;
  count: number;
  /** Seconds the build took, or null when a cached index was reused. */
  buildSeconds: number | null;
}

export function syntheticIndexDir(model: ResolvedModel, count: number, dtype: VectorDType): string {
  return join(BENCH_DIR, `index-${model.manifest.name}-${count}${dtype === "f32" ? "" : `-${dtype}`}`);
}

/**
 * An index of `count` synthetic rows (fake paths, random unit vectors) for `model`, written through
 * IndexStore.addBatch in large batches. A `done` marker is written last, so an interrupted build is redone.
 */
export async function syntheticIndex(
  model: ResolvedModel,
  count: number,
  onProgress?: (rows: number) => void,
  dtype: VectorDType = "i8",
): Promise<SyntheticIndex> {
  const dir = syntheticIndexDir(model, count, dtype);
  const done = join(dir, "done");
  if (existsSync(done)) return { dir, count, buildSeconds: null };
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const m = model.manifest;
  const t0 = performance.now();
  // Imported here so benches that only need JPEGs or the model do not load DuckDB and USearch.
  const { IndexStore } = await import("../src/engine/store/index-store.ts");
  const store = await IndexStore.open(dir, {
    model: { name: m.name, dims: m.dims, preprocess: m.preprocess, tokenizer: m.tokenizer },
    vectors: { dtype },
  });
  try {
    const rand = prng(count);
    const chunk = 20_000;
    for (let start = 0; start < count; start += chunk) {
      const n = Math.min(chunk, count - start);
      const rows: NewImage[] = Array.from({ length: n }, (_, r) => {
        const i = start + r;
        return {
          path: `/bench/photos/${String(Math.floor(i / 1000)).padStart(4, "0")}/IMG_${i}.jpg`,
          size: 2_000_000 + (i % 1000),
          mtimeMs: 1_700_000_000_000 + i,
          imohash: `bench${i}`,
          width: 3000,
          height: 2000,
          takenAt: `2023-${String(1 + (i % 12)).padStart(2, "0")}-${String(1 + (i % 28)).padStart(2, "0")}T12:00:00`,
          cameraMake: "imgd-bench",
          cameraModel: "synthetic",
          status: "indexed",
        };
      });
      await store.addBatch(rows, randomUnitVectors(n, m.dims, rand));
      onProgress?.(start + n);
    }
    await store.checkpoint();
  } finally {
    await store.close();
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  writeFileSync(done, `${count} rows built in ${buildSeconds.toFixed(1)} s\n`);
  return { dir, count, buildSeconds };
}

/** The seconds a previous build of this index took, from its marker. */
export function recordedBuildSeconds(index: SyntheticIndex): number | null {
  const m = /in ([\d.]+) s/.exec(readFileSync(join(index.dir, "done"), "utf8"));
  return m ? Number(m[1]) : null;
}
