// Search quality and cost of each vector type, through IndexStore.search as `imgd query` and `imgd serve` use it:
// recall@k against exact f32 search, the mean |score error| of the hits, search latency, and the vectors' memory.
// Clustered 512-d unit vectors (centres plus spread), like real embeddings, where i8's coarse distances misrank.
//
// Usage: bun bench/recall.ts [--vectors 50000] [--queries 300] [--k 20] [--dtypes f32,f16,i8] [--expansion 0]
// (--expansion: USearch's expansion_search; 0 is its default)
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { gaussian } from "../src/engine/cluster/pca.ts";
import { mulberry32 } from "../src/engine/seeded-random.ts";
import { IndexStore, type NewImage, type VectorDType } from "../src/engine/store/index-store.ts";
import { EXACT_FILE } from "../src/engine/store/exact-rows.ts";
import { MetadataCache } from "../src/engine/store/metadata-cache.ts";
import { VECTORS_FILE } from "../src/engine/store/vectors.ts";
import { flag, percentile } from "./fixtures.ts";

const DIMS = 512;
const count = Number(flag("--vectors", "50000"));
const queries = Number(flag("--queries", "300"));
const k = Number(flag("--k", "20"));
const dtypes = flag("--dtypes", "f32,f16,i8").split(",") as VectorDType[];
const expansionSearch = Number(flag("--expansion", "0"));

const rand = mulberry32(0x5eed);
const gauss = () => gaussian(rand);
function unit(v: Float32Array): Float32Array {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}
// Real embeddings vary along few directions: each vector is one of 200 centres, moved within a shared 32-d
// subspace, plus a little isotropic noise. Queries are drawn the same way, so they are not stored vectors.
const RANK = 32;
const centres = Array.from({ length: 200 }, () => Float32Array.from({ length: DIMS }, gauss));
const basis = Array.from({ length: RANK }, () => Float32Array.from({ length: DIMS }, gauss));
function draw(): Float32Array {
  const v = Float32Array.from(centres[Math.floor(rand() * centres.length)]!);
  for (const b of basis) {
    const z = 0.5 * gauss();
    for (let d = 0; d < DIMS; d++) v[d]! += z * b[d]!;
  }
  for (let d = 0; d < DIMS; d++) v[d]! += 0.3 * gauss();
  return unit(v);
}
const data = new Float32Array(count * DIMS);
for (let i = 0; i < count; i++) data.set(draw(), i * DIMS);
const asked = Array.from({ length: queries }, draw);

/** Exact top-k by f32 dot product: path and score. */
function exactTop(query: Float32Array): { path: string; score: number }[] {
  const scores = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let dot = 0;
    for (let d = 0; d < DIMS; d++) dot += data[i * DIMS + d]! * query[d]!;
    scores[i] = dot;
  }
  return [...scores.keys()]
    .sort((a, b) => scores[b]! - scores[a]!)
    .slice(0, k)
    .map((i) => ({ path: pathOf(i), score: scores[i]! }));
}
const pathOf = (i: number) => `/bench/${String(i).padStart(7, "0")}.jpg`;
const truth = asked.map(exactTop);

const model = {
  name: "bench-512",
  dims: DIMS,
  preprocess: { size: 224, interpolation: "bicubic" as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
};
const row = (i: number): NewImage => ({
  path: pathOf(i), size: 1, mtimeMs: 1, imohash: `h${i}`, width: 1, height: 1, takenAt: null, cameraMake: null, cameraModel: null, status: "indexed",
});

console.log(`recall@${k} against exact f32 search: ${count} clustered ${DIMS}-d vectors, ${queries} queries, expansion_search ${expansionSearch || "default"}`);
console.log(`dtype  recall@${k}  |score error|  search p50     p99   vectors in memory  on disk only`);
for (const dtype of dtypes) {
  const dir = join(mkdtempSync(join(tmpdir(), "imgd-recall-")), "index");
  const build = await IndexStore.open(dir, { model, vectors: { dtype, expansionSearch } });
  for (let i = 0; i < count; i += 2000) {
    const n = Math.min(2000, count - i);
    await build.addBatch(Array.from({ length: n }, (_, j) => row(i + j)), data.subarray(i * DIMS, (i + n) * DIMS));
  }
  await build.close();
  const store = await IndexStore.open(dir, { readOnly: true, verifyChecksum: false });
  // As `imgd serve` does: hit metadata from memory, so the latency is the search's own.
  store.useRecordCache(await MetadataCache.load(store));
  let found = 0;
  let error = 0;
  let scored = 0;
  const ms: number[] = [];
  for (let q = 0; q < queries; q++) {
    const t0 = performance.now();
    const hits = await store.search(asked[q]!, k);
    ms.push(performance.now() - t0);
    const want = new Map(truth[q]!.map((t) => [t.path, t.score]));
    for (const h of hits) {
      const exact = want.get(h.path);
      if (exact === undefined) continue;
      found++;
      error += Math.abs(h.score - exact);
      scored++;
    }
  }
  await store.close();
  ms.sort((a, b) => a - b);
  const inMemory = statSync(join(dir, VECTORS_FILE)).size / 2 ** 20;
  const exactRows = statSync(join(dir, EXACT_FILE), { throwIfNoEntry: false })?.size ?? 0;
  console.log(
    `${dtype.padEnd(5)}  ${(found / (queries * k)).toFixed(3).padStart(9)}  ${(error / Math.max(1, scored)).toExponential(1).padStart(13)}` +
      `  ${percentile(ms, 50).toFixed(2).padStart(7)} ms ${percentile(ms, 99).toFixed(2).padStart(6)} ms  ${inMemory.toFixed(0).padStart(13)} MiB` +
      `  ${exactRows ? `${(exactRows / 2 ** 20).toFixed(0)} MiB (${EXACT_FILE})` : "-"}`,
  );
  rmSync(join(dir, ".."), { recursive: true, force: true });
}
