// Near-duplicate precision/recall over thresholds, and the default threshold they suggest for a model.
//
//   bun bench/near-dups.ts [--model test-clip] [--models DIR] [--unrelated 18] [--from 0.80] [--step 0.005]
//                          [--scale 100000]
//
// The set: every photo in ../shared/photos and sample/ as an original, plus a 50 % resize, a JPEG q=60 re-encode
// and a 5 % crop of each (test/fixtures/near-dup-set.ts), plus unrelated 2×2 mosaics of other photos. It is
// indexed for real (runIndex), then pairs are scored the way `imgd dups` groups them: two images are predicted
// duplicates when they land in one group (transitive), and truly duplicates when they come from one photo.
// The suggested default is the middle of the range of thresholds with the best F1. --scale N also times the
// whole `imgd dups` near pass over a synthetic index of N random vectors (bench/fixtures.ts syntheticIndex).
import { rmSync } from "node:fs";
import { join } from "node:path";
import { UnionFind } from "../src/engine/cluster/union-find.ts";
import { defaultNearThreshold, nearDuplicateGroups } from "../src/engine/duplicates.ts";
import { runIndex } from "../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../src/engine/models.ts";
import { IndexStore } from "../src/engine/store/index-store.ts";
import { photoFiles, writeNearDupSet, type LabelledImage } from "../test/fixtures/near-dup-set.ts";
import { BENCH_DIR, flag, loadNote, REPO, syntheticIndex, testClipModel } from "./fixtures.ts";

const modelName = flag("--model", "test-clip");
const modelsDir = flag("--models", join(REPO, "models"));
const from = Number(flag("--from", "0.80"));
const step = Number(flag("--step", "0.005"));

const originals = photoFiles();
const unrelated = Number(flag("--unrelated", String(originals.length)));
const dir = join(BENCH_DIR, `near-dups-${modelName}`);
rmSync(dir, { recursive: true, force: true });
const set = await writeNearDupSet(join(dir, "photos"), originals, unrelated);
const model = await resolveModel(modelName, modelSearchDirs(modelsDir));
const t0 = performance.now();
await runIndex({ roots: [join(dir, "photos")], indexDir: join(dir, "index"), model, batchSize: 16, threads: 2 });
const indexMs = performance.now() - t0;

const store = await IndexStore.open(join(dir, "index"), { readOnly: true });
const idOf = new Map([...(await store.knownFiles()).values()].map((f) => [f.path, f.id]));
const images = set.filter((l) => idOf.has(l.path));
const vectors = await Promise.all(images.map(async (l) => unit((await store.getEmbedding(idOf.get(l.path)!))!)));
const n = images.length;
const pairs: { a: number; b: number; score: number; same: boolean }[] = [];
for (let a = 0; a < n; a++) for (let b = a + 1; b < n; b++) pairs.push({ a, b, score: dot(vectors[a]!, vectors[b]!), same: images[a]!.source === images[b]!.source });
const positives = pairs.filter((p) => p.same).length;

console.log(`near-duplicate set: ${originals.length} originals × (original + resized 50 % + q60 + crop 5 %) + ${unrelated} unrelated = ${n} images, ${positives} duplicate pairs of ${pairs.length}`);
console.log(`model ${modelName}; indexed in ${(indexMs / 1000).toFixed(1)} s; ${loadNote()}`);
const sorted = (xs: number[]) => xs.sort((x, y) => x - y);
const posScores = sorted(pairs.filter((p) => p.same).map((p) => p.score));
const negScores = sorted(pairs.filter((p) => !p.same).map((p) => p.score));
console.log(`pair cosine: duplicates min ${posScores[0]!.toFixed(4)}  unrelated max ${negScores[negScores.length - 1]!.toFixed(4)}`);

interface Row { t: number; precision: number; recall: number; f1: number; byKind: Record<string, number> }
const rows: Row[] = [];
for (let t = from; t <= 1 + 1e-9; t = +(t + step).toFixed(6)) rows.push(score(t));
const best = Math.max(...rows.map((r) => r.f1));
const top = rows.filter((r) => r.f1 >= best - 1e-12);
const chosen = +((top[0]!.t + top[top.length - 1]!.t) / 2).toFixed(4);

console.log(`\n threshold  precision  recall     F1   recall: resized   q60  crop5`);
for (const r of rows) {
  if (r !== top[0] && r !== top[top.length - 1] && Math.round(r.t * 1000) % 20 !== 0) continue;
  const k = r.byKind;
  console.log(`   ${r.t.toFixed(3)}      ${r.precision.toFixed(3)}   ${r.recall.toFixed(3)}  ${r.f1.toFixed(3)}           ${k.resized!.toFixed(2)}  ${k.q60!.toFixed(2)}   ${k.crop5!.toFixed(2)}`);
}
const engine = await nearDuplicateGroups(store, chosen);
const engineScore = scoreGroups(engine.map((g) => g.images.map((i) => images.findIndex((l) => l.path === i.path))));
console.log(`\nbest F1 ${best.toFixed(3)} for thresholds ${top[0]!.t.toFixed(3)}..${top[top.length - 1]!.t.toFixed(3)}; suggested default ${chosen}`);
console.log(`imgd dups at ${chosen} (USearch kNN + union-find): precision ${engineScore.precision.toFixed(3)} recall ${engineScore.recall.toFixed(3)}, ${engine.length} groups`);
console.log(`current default for ${modelName}: ${defaultNearThreshold(modelName)} -> ${scoreLine(score(defaultNearThreshold(modelName)))}`);
await store.close();

const scale = Number(flag("--scale", "0"));
if (scale > 0) {
  const synthetic = await syntheticIndex(await testClipModel(), scale);
  const big = await IndexStore.open(synthetic.dir, { readOnly: true });
  const rssBefore = process.memoryUsage.rss();
  const t1 = performance.now();
  const groups = await nearDuplicateGroups(big, defaultNearThreshold("test-clip"));
  const secs = (performance.now() - t1) / 1000;
  console.log(`\nnear pass over ${scale} vectors: ${secs.toFixed(1)} s (${((1000 * secs) / scale).toFixed(3)} ms/image), ${groups.length} groups, RSS +${((process.memoryUsage.rss() - rssBefore) / 2 ** 20).toFixed(0)} MiB; ${loadNote()}`);
  await big.close();
}

function score(t: number): Row {
  const uf = new UnionFind(n);
  for (const p of pairs) if (p.score >= t) uf.union(p.a, p.b);
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) members.set(uf.find(i), [...(members.get(uf.find(i)) ?? []), i]);
  return { t, ...scoreGroups([...members.values()]) };
}

/** Pairwise precision/recall of a grouping, and per copy kind the share of copies grouped with their original. */
function scoreGroups(groups: number[][]): Omit<Row, "t"> {
  const group = new Int32Array(n).fill(-1);
  groups.forEach((g, k) => g.forEach((i) => i >= 0 && (group[i] = k)));
  let tp = 0, fp = 0;
  for (const p of pairs) {
    if (group[p.a] === -1 || group[p.a] !== group[p.b]) continue;
    if (p.same) tp++;
    else fp++;
  }
  const precision = tp + fp === 0 ? 1 : tp / (tp + fp);
  const recall = positives === 0 ? 1 : tp / positives;
  const byKind: Record<string, number> = {};
  for (const kind of ["resized", "q60", "crop5"] as const) {
    const copies = images.map((l, i) => [l, i] as const).filter(([l]) => l.kind === kind);
    const joined = copies.filter(([l, i]) => {
      const o = images.findIndex((x: LabelledImage) => x.source === l.source && x.kind === "original");
      return group[i] !== -1 && group[i] === group[o];
    });
    byKind[kind] = copies.length === 0 ? 1 : joined.length / copies.length;
  }
  return { precision, recall, f1: precision + recall === 0 ? 0 : (2 * precision * recall) / (precision + recall), byKind };
}

function scoreLine(r: Row): string {
  return `precision ${r.precision.toFixed(3)} recall ${r.recall.toFixed(3)} F1 ${r.f1.toFixed(3)}`;
}

function unit(v: Float32Array): Float32Array {
  const norm = Math.hypot(...v);
  return v.map((x) => x / norm);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
