import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adjustedRandIndex } from "../../src/engine/cluster/ari.ts";
import { hdbscan } from "../../src/engine/cluster/hdbscan.ts";
import { clusterEmbeddings } from "../../src/engine/cluster/index.ts";
import { exactCoreDistances, exactKnn, ivfKnn, refineWithNeighboursOfNeighbours } from "../../src/engine/cluster/knn.ts";
import { gaussian, pca } from "../../src/engine/cluster/pca.ts";
import { exactMutualReachabilityMst } from "../../src/engine/cluster/spanning-tree.ts";
import { Kernels, copyRows, paddedDims } from "../../src/engine/cluster/wasm-kernels.ts";
import { mulberry32 } from "../../src/engine/seeded-random.ts";

interface Blob { centre: number[]; spread: number; count: number }

function makeData(dims: number, blobs: Blob[], noise: number, noiseBox: number, seed: number) {
  const rand = mulberry32(seed);
  const n = blobs.reduce((s, b) => s + b.count, 0) + noise;
  const data = new Float32Array(n * dims), truth = new Int32Array(n);
  let i = 0;
  blobs.forEach((b, label) => {
    for (let c = 0; c < b.count; c++, i++) {
      truth[i] = label;
      for (let k = 0; k < dims; k++) data[i * dims + k] = (b.centre[k] ?? 0) + gaussian(rand) * b.spread;
    }
  });
  for (; i < n; i++) {
    truth[i] = -1;
    for (let k = 0; k < dims; k++) data[i * dims + k] = (rand() - 0.5) * noiseBox;
  }
  return { data, truth, n };
}

function randomCentres(count: number, dims: number, box: number, seed: number): number[][] {
  const rand = mulberry32(seed);
  return Array.from({ length: count }, () => Array.from({ length: dims }, () => (rand() - 0.5) * box));
}

describe("adjustedRandIndex", () => {
  test("identical partitions score 1 whatever the label names", () => {
    expect(adjustedRandIndex([0, 0, 1, 1, 2], [5, 5, 9, 9, -1])).toBe(1);
  });
  test("a known textbook pair scores 0.2424…", () => {
    // sklearn.metrics.adjusted_rand_score([0,0,0,1,1,1],[0,0,1,1,2,2]) = 0.24242424…
    expect(adjustedRandIndex([0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 2, 2])).toBeCloseTo(0.242424242, 8);
  });
  test("splitting every cluster into singletons scores 0", () => {
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 1, 2, 3])).toBe(0);
  });
});

/** Face-like rows: `groups` identities on a 16-d latent subspace of `dims`, ~10 % one-off noise rows. */
function faceLike(n: number, dims: number, groups: number, seed: number) {
  const rand = mulberry32(seed);
  const latent = (scale: number) => {
    const v = new Float32Array(dims);
    for (let i = 0; i < 16; i++) v[i] = gaussian(rand);
    const s = scale / Math.hypot(...v);
    return v.map((x) => x * s);
  };
  const centres = Array.from({ length: groups }, () => latent(1));
  const noise = Math.round(n / 10);
  const data = new Float32Array(n * dims), truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const face = i < n - noise;
    const base = face ? centres[i % groups]! : latent(1), jitter = latent(0.35);
    truth[i] = face ? i % groups : -1;
    for (let k = 0; k < dims; k++) data[i * dims + k] = base[k]! + jitter[k]! + gaussian(rand) * 0.02;
  }
  return { data, truth, n };
}

function bruteForce(data: Float32Array, dims: number, i: number, j: number): number {
  let s = 0;
  for (let k = 0; k < dims; k++) s += (data[i * dims + k]! - data[j * dims + k]!) ** 2;
  return s;
}

describe("WASM SIMD kernels", () => {
  const n = 203, dims = 50, p = paddedDims(dims);
  const rand = mulberry32(5);
  const data = Float32Array.from({ length: n * dims }, () => rand() - 0.5);

  test("distances4x2 reports every row below a query's threshold with its squared distance", () => {
    const K = new Kernels();
    const rows = copyRows(K, data, n, dims, 1);
    const norms = K.alloc((n + 1) * 4), q = K.alloc(16), qn = K.alloc(16), thr = K.alloc(16), out = K.alloc(24 * (n + 1));
    const F = K.F32, I = K.I32;
    for (let i = 0; i < n; i++) F[(norms >> 2) + i] = data.subarray(i * dims, (i + 1) * dims).reduce((s, v) => s + v * v, 0);
    const queries = [0, 7, 100, 202];
    queries.forEach((row, r) => { I[(q >> 2) + r] = rows + row * p * 4; F[(qn >> 2) + r] = F[(norms >> 2) + row]!; F[(thr >> 2) + r] = 7 + r; });
    const records = K.fn.distances4x2(q, rows, n + 1, p * 4, norms, qn, thr, out);
    const found = new Set<string>();
    for (let e = 0; e < records; e++) {
      const j = I[(out >> 2) + e * 6]!, mask = I[(out >> 2) + e * 6 + 1]!;
      if (j >= n) continue;
      queries.forEach((row, r) => {
        if (!(mask & (1 << r))) return;
        found.add(`${r},${j}`);
        expect(F[(out >> 2) + e * 6 + 2 + r]!).toBeCloseTo(bruteForce(data, dims, row, j), 4);
      });
    }
    let expected = 0;
    queries.forEach((row, r) => {
      for (let j = 0; j < n; j++) if (bruteForce(data, dims, row, j) < 7 + r - 1e-4) { expected++; expect(found.has(`${r},${j}`)).toBe(true); }
    });
    expect(expected).toBeGreaterThan(50);
  });

  test("exactKnn returns the brute-force neighbours in order, self first", () => {
    const k = 7;
    const graph = exactKnn(data, n, dims, k);
    for (const i of [0, 1, 99, 202]) {
      const order = Array.from({ length: n }, (_, j) => j).sort((a, b) => bruteForce(data, dims, i, a) - bruteForce(data, dims, i, b));
      expect(graph.indices[i * k]).toBe(i);
      for (let r = 0; r < k; r++) {
        expect(graph.indices[i * k + r]).toBe(order[r]!);
        expect(graph.distances[i * k + r]!).toBeCloseTo(Math.sqrt(bruteForce(data, dims, i, order[r]!)), 4);
      }
    }
  });

  test("the Prim spanning tree weighs the same as a scalar Prim over the mutual-reachability graph", () => {
    const core = new Float64Array(n).map((_, i) => 0.3 + (i % 5) * 0.05);
    const edges = exactMutualReachabilityMst(data, n, dims, core);
    expect(edges.count).toBe(n - 1);
    const inTree = new Uint8Array(n), best = new Float64Array(n).fill(Infinity);
    let total = 0, current = 0;
    for (let step = 1; step < n; step++) {
      inTree[current] = 1;
      let next = -1;
      for (let j = 0; j < n; j++) {
        if (inTree[j]) continue;
        const m = Math.max(Math.sqrt(bruteForce(data, dims, current, j)), core[current]!, core[j]!);
        if (m < best[j]!) best[j] = m;
        if (next < 0 || best[j]! < best[next]!) next = j;
      }
      total += best[next]!;
      current = next;
    }
    let ours = 0;
    for (let e = 0; e < edges.count; e++) ours += edges.weight[e]!;
    expect(ours).toBeCloseTo(total, 3);
  });
});

describe("approximate kNN", () => {
  test("k-means cells plus one NN-descent pass find ≥ 97 % of the exact neighbours of face-like data", () => {
    const set = faceLike(4000, 24, 100, 31);
    const k = 16;
    const exact = exactKnn(set.data, set.n, 24, k);
    const approx = refineWithNeighboursOfNeighbours(ivfKnn(set.data, set.n, 24, k), set.data, set.n, 24);
    let hits = 0;
    for (let i = 0; i < set.n; i++) {
      const truth = new Set(exact.indices.subarray(i * k, (i + 1) * k));
      for (let r = 0; r < k; r++) if (truth.has(approx.indices[i * k + r]!)) hits++;
      expect(approx.indices[i * k]).toBe(i);
    }
    expect(hits / (set.n * k)).toBeGreaterThanOrEqual(0.97);
  });
});

describe("hdbscan", () => {
  const dims = 8;
  const centres = randomCentres(6, dims, 40, 1);
  const blobs = makeData(dims, centres.map((centre) => ({ centre, spread: 0.6, count: 120 })), 60, 60, 2);

  for (const exact of [true, false]) {
    test(`${exact ? "exact" : "approximate"} mode recovers well-separated blobs and leaves scattered points as noise`, () => {
      const { labels, probabilities } = hdbscan(blobs.data, blobs.n, dims, { minClusterSize: 10, exact });
      const clustered = Array.from(labels.keys()).filter((i) => blobs.truth[i]! >= 0);
      expect(adjustedRandIndex(clustered.map((i) => labels[i]!), clustered.map((i) => blobs.truth[i]!))).toBeGreaterThanOrEqual(0.99);
      // The approximate spanning tree is heavier between clusters, so a few more stray points join a cluster.
      const noise = Array.from(labels.keys()).filter((i) => blobs.truth[i]! < 0);
      expect(noise.filter((i) => labels[i] === -1).length / noise.length).toBeGreaterThan(exact ? 0.9 : 0.5);
      expect(adjustedRandIndex(labels, blobs.truth)).toBeGreaterThanOrEqual(exact ? 0.95 : 0.9);
      for (let i = 0; i < blobs.n; i++) {
        expect(probabilities[i]!).toBeGreaterThanOrEqual(0);
        expect(probabilities[i]!).toBeLessThanOrEqual(1);
        if (labels[i] === -1) expect(probabilities[i]).toBe(0);
      }
      expect(Math.max(...probabilities)).toBe(1);
    });
  }

  test("cosine metric clusters directions regardless of vector length", () => {
    const rand = mulberry32(3);
    const data = new Float32Array(blobs.data.length);
    for (let i = 0; i < blobs.n; i++) {
      const scale = 1 + rand() * 4;
      for (let k = 0; k < dims; k++) data[i * dims + k] = blobs.data[i * dims + k]! * scale;
    }
    const clustered = Array.from({ length: 720 }, (_, i) => i);
    const { labels } = hdbscan(data, blobs.n, dims, { minClusterSize: 10, metric: "cosine", exact: true });
    expect(adjustedRandIndex(clustered.map((i) => labels[i]!), clustered.map((i) => blobs.truth[i]!))).toBeGreaterThanOrEqual(0.97);
  });

  // Two pairs of overlapping sub-blobs, the pairs far apart: EOM keeps the two pairs, leaf keeps the four subs.
  const nested = makeData(2, [
    { centre: [0, 0], spread: 0.3, count: 150 }, { centre: [1.5, 0], spread: 0.3, count: 100 },
    { centre: [100, 0], spread: 0.3, count: 150 }, { centre: [101.5, 0], spread: 0.3, count: 100 },
  ], 0, 0, 4);
  const pairs = nested.truth.map((t) => (t < 2 ? 0 : 1));
  const clusterCount = (labels: Int32Array) => new Set(Array.from(labels).filter((l) => l >= 0)).size;

  test("EOM selects the two stable parents of a nested-blob case", () => {
    const { labels } = hdbscan(nested.data, nested.n, 2, { minClusterSize: 20, clusterSelectionMethod: "eom", exact: true });
    expect(adjustedRandIndex(labels, pairs)).toBe(1);
  });

  test("leaf selection returns the four sub-blobs of the same case", () => {
    const { labels } = hdbscan(nested.data, nested.n, 2, { minClusterSize: 20, clusterSelectionMethod: "leaf", exact: true });
    expect(clusterCount(labels)).toBe(4);
    const kept = Array.from(labels.keys()).filter((i) => labels[i]! >= 0);
    expect(kept.length).toBeGreaterThan(nested.n / 2);
    expect(adjustedRandIndex(kept.map((i) => labels[i]!), kept.map((i) => nested.truth[i]!))).toBeGreaterThanOrEqual(0.95);
  });

  test("clusterSelectionEpsilon merges leaves that split below the threshold", () => {
    const leaf = { minClusterSize: 20, clusterSelectionMethod: "leaf" as const, exact: true };
    const { labels } = hdbscan(nested.data, nested.n, 2, { ...leaf, clusterSelectionEpsilon: 10 });
    expect(clusterCount(labels)).toBe(2);
    expect(adjustedRandIndex(labels, pairs)).toBe(1);
  });

  test("fewer points than minClusterSize are all noise", () => {
    const { labels, probabilities } = hdbscan(blobs.data, 9, dims, { minClusterSize: 10 });
    expect(Array.from(labels)).toEqual(new Array(9).fill(-1));
    expect(Array.from(probabilities)).toEqual(new Array(9).fill(0));
  });

  test("a minClusterSize of n or more is all noise at once, without a kNN graph of n neighbours a point", () => {
    const set = faceLike(2000, 24, 10, 35);
    for (const minClusterSize of [2000, 1_000_000]) {
      const result = hdbscan(set.data, set.n, 24, { minClusterSize, exact: false });
      expect(result.labels.every((l) => l === -1)).toBe(true);
      expect(result.timings).toEqual({});
    }
  });

  test("approximate mode agrees with exact mode on 4,000 face-like points (ARI ≥ 0.98)", () => {
    const set = faceLike(4000, 24, 100, 32);
    const exact = hdbscan(set.data, set.n, 24, { minClusterSize: 10, exact: true });
    const approx = hdbscan(set.data, set.n, 24, { minClusterSize: 10, exact: false });
    expect(exact.exact).toBe(true);
    expect(approx.exact).toBe(false);
    expect(adjustedRandIndex(approx.labels, exact.labels)).toBeGreaterThanOrEqual(0.98);
    expect(adjustedRandIndex(exact.labels, set.truth)).toBeGreaterThanOrEqual(0.95);
  });

  test("approximate mode with a minSamples larger than 10 k-means cells hold agrees with exact mode", () => {
    // 1,500 points in 39 cells: 10 cells hold ~385, fewer than minSamples. Such short neighbour lists had infinite
    // core distances, and joining the forest failed with "no edge between components".
    const set = faceLike(1500, 24, 2, 33);
    const opts = { minClusterSize: 10, minSamples: 500 };
    const exact = hdbscan(set.data, set.n, 24, { ...opts, exact: true });
    const approx = hdbscan(set.data, set.n, 24, { ...opts, exact: false });
    expect(new Set(exact.labels).size).toBeGreaterThan(1);
    expect(adjustedRandIndex(approx.labels, exact.labels)).toBeGreaterThanOrEqual(0.98);
  });

  test("exactCoreDistances is the distance to the rank-th neighbour of exactKnn, counting the point itself", () => {
    const set = faceLike(300, 8, 5, 34);
    const knn = exactKnn(set.data, set.n, 8, 20);
    const points = [0, 17, 299];
    const core = exactCoreDistances(set.data, set.n, 8, points, 19);
    points.forEach((p, i) => expect(core[i]!).toBeCloseTo(knn.distances[p * 20 + 19]!, 4));
    expect(exactCoreDistances(set.data, set.n, 8, [5], 0)[0]).toBe(0);
  });

  test("labels do not depend on row order even where many spanning trees tie (points on a grid)", () => {
    // Integer grid blobs: countless equal distances and core distances, so tie-breaking shapes the spanning tree.
    const rand = mulberry32(8);
    const rows: number[][] = [];
    for (const [cx, cy] of [[0, 0], [30, 0], [0, 30], [31, 31]]) {
      for (let x = 0; x < 7; x++) for (let y = 0; y < 7; y++) if (rand() < 0.8) rows.push([cx + x, cy + y]);
    }
    for (let i = 0; i < 15; i++) rows.push([Math.floor(rand() * 45), Math.floor(rand() * 45)]);
    const n = rows.length;
    const order = Array.from({ length: n }, (_, i) => i).sort(() => rand() - 0.5);
    const a = hdbscan(Float32Array.from(rows.flat()), n, 2, { minClusterSize: 8, exact: true });
    const b = hdbscan(Float32Array.from(order.flatMap((i) => rows[i]!)), n, 2, { minClusterSize: 8, exact: true });
    const bInOriginalOrder = new Int32Array(n);
    order.forEach((orig, pos) => { bInOriginalOrder[orig] = b.labels[pos]!; });
    expect(new Set(a.labels).size).toBeGreaterThanOrEqual(4);
    expect(adjustedRandIndex(a.labels, bInOriginalOrder)).toBe(1);
  });

  test("reports progress per stage from 0 to 1 and a timing for every stage it ran", () => {
    const seen: [string, number][] = [];
    const result = clusterEmbeddings(blobs.data, blobs.n, dims, { minClusterSize: 10, pca: 4, exact: false, onProgress: (s, f) => seen.push([s, f]) });
    const stages = [...new Set(seen.map(([s]) => s))];
    expect(stages).toEqual(["pca", "knn", "mst", "connect", "tree"]);
    for (const stage of stages) {
      const fractions = seen.filter(([s]) => s === stage).map(([, f]) => f);
      expect(fractions[0]).toBe(0);
      expect(fractions.at(-1)).toBe(1);
      expect(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]!))).toBe(true);
      expect(result.timings[stage]).toBeGreaterThanOrEqual(0);
    }
  });

  test("empty and single-point inputs return empty and noise labels", () => {
    expect(hdbscan(new Float32Array(0), 0, dims, { minClusterSize: 5 }).labels.length).toBe(0);
    expect(Array.from(hdbscan(blobs.data, 1, dims, { minClusterSize: 5 }).labels)).toEqual([-1]);
  });
});

describe("clusterEmbeddings", () => {
  test("PCA to 10 dims keeps 64-d blobs separable and the result deterministic", () => {
    const dims = 64;
    const centres = randomCentres(5, dims, 10, 9);
    const set = makeData(dims, centres.map((centre) => ({ centre, spread: 0.3, count: 80 })), 0, 0, 10);
    const a = clusterEmbeddings(set.data, set.n, dims, { minClusterSize: 10, pca: 10 });
    const b = clusterEmbeddings(set.data, set.n, dims, { minClusterSize: 10, pca: 10 });
    expect(adjustedRandIndex(a.labels, set.truth)).toBeGreaterThanOrEqual(0.99);
    expect(Array.from(a.labels)).toEqual(Array.from(b.labels));
    expect(a.timings.pca).toBeGreaterThanOrEqual(0);
  });

  test("PCA of data living on a 3-d subspace puts nearly all variance in 3 components", () => {
    const rand = mulberry32(11);
    const n = 500, dims = 30;
    const basis = Array.from({ length: 3 }, () => Array.from({ length: dims }, () => gaussian(rand)));
    const data = new Float32Array(n * dims);
    for (let i = 0; i < n; i++) {
      const c = [gaussian(rand) * 5, gaussian(rand) * 3, gaussian(rand)];
      for (let k = 0; k < dims; k++) data[i * dims + k] = c[0]! * basis[0]![k]! + c[1]! * basis[1]![k]! + c[2]! * basis[2]![k]! + 7;
    }
    const out = pca(data, n, dims, { dims: 5 });
    const variance = (c: number) => out.filter((_, i) => i % 5 === c).reduce((s, v) => s + v * v, 0) / n;
    expect(variance(0)).toBeGreaterThan(variance(1));
    expect(variance(3) + variance(4)).toBeLessThan(1e-6 * variance(0));
  });
});

const rscript = Bun.which("Rscript");
const hasRDbscan = rscript !== null && Bun.spawnSync([rscript, "-e", "library(dbscan)"]).exitCode === 0;

function rHdbscan(data: Float32Array, n: number, dims: number, minPts: number): number[] {
  const dir = mkdtempSync(join(tmpdir(), "imgd-cluster-"));
  const csv = join(dir, "x.csv");
  const rows: string[] = [];
  for (let i = 0; i < n; i++) rows.push(Array.from(data.subarray(i * dims, (i + 1) * dims)).join(","));
  writeFileSync(csv, rows.join("\n"));
  const r = Bun.spawnSync([rscript!, "-e",
    `suppressMessages(library(dbscan)); x <- as.matrix(read.csv('${csv}', header=FALSE)); cat(hdbscan(x, minPts=${minPts})$cluster, sep='\\n')`]);
  rmSync(dir, { recursive: true });
  if (r.exitCode !== 0) throw new Error(`Rscript failed: ${r.stderr.toString()}`);
  const labels = r.stdout.toString().trim().split("\n").map((s) => Number(s) - 1); // R: 0 = noise, clusters 1..k
  if (labels.length !== n) throw new Error(`R returned ${labels.length} labels for ${n} points`);
  return labels;
}

test.skipIf(!hasRDbscan)("exact mode agrees with R dbscan::hdbscan on 2,000 points in 20 dims (ARI ≥ 0.99; needs Rscript + r-cran-dbscan)", () => {
  const dims = 20;
  const centres = randomCentres(8, dims, 20, 21);
  const set = makeData(dims, centres.map((centre, i) => ({ centre, spread: 0.5 + 0.1 * i, count: 237 })), 104, 24, 22);
  const rLabels = rHdbscan(set.data, set.n, dims, 15);
  const ours = hdbscan(set.data, set.n, dims, { minClusterSize: 15, exact: true });
  expect(adjustedRandIndex(ours.labels, rLabels)).toBeGreaterThanOrEqual(0.99);
  expect(ours.labels.filter((l) => l === -1).length).toBe(rLabels.filter((l) => l === -1).length);
});

test.skipIf(!hasRDbscan)("exact mode agrees with R dbscan::hdbscan on 3,000 face-like points with many tied distances (ARI ≥ 0.99)", () => {
  const set = faceLike(3000, 24, 90, 33);
  const rLabels = rHdbscan(set.data, set.n, 24, 10);
  const ours = hdbscan(set.data, set.n, 24, { minClusterSize: 10, exact: true });
  expect(adjustedRandIndex(ours.labels, rLabels)).toBeGreaterThanOrEqual(0.99);
});
