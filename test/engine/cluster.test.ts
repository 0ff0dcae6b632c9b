import { describe, expect, test } from "bun:test";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { adjustedRandIndex } from "../../src/engine/cluster/ari.ts";
import { hdbscan } from "../../src/engine/cluster/hdbscan.ts";
import { clusterEmbeddings } from "../../src/engine/cluster/index.ts";
import { gaussian, pca } from "../../src/engine/cluster/pca.ts";
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

test.skipIf(!hasRDbscan)("exact mode agrees with R dbscan::hdbscan on 2,000 points in 20 dims (ARI ≥ 0.99; needs Rscript + r-cran-dbscan)", () => {
  const dims = 20;
  const centres = randomCentres(8, dims, 20, 21);
  const set = makeData(dims, centres.map((centre, i) => ({ centre, spread: 0.5 + 0.1 * i, count: 237 })), 104, 24, 22);
  const dir = mkdtempSync(join(tmpdir(), "imgd-cluster-"));
  const csv = join(dir, "x.csv");
  const rows: string[] = [];
  for (let i = 0; i < set.n; i++) rows.push(Array.from(set.data.subarray(i * dims, (i + 1) * dims)).join(","));
  writeFileSync(csv, rows.join("\n"));
  const r = Bun.spawnSync([rscript!, "-e",
    `suppressMessages(library(dbscan)); x <- as.matrix(read.csv('${csv}', header=FALSE)); cat(hdbscan(x, minPts=15)$cluster, sep='\\n')`]);
  expect(r.exitCode).toBe(0);
  const rLabels = r.stdout.toString().trim().split("\n").map((s) => Number(s) - 1); // R: 0 = noise, clusters 1..k
  expect(rLabels.length).toBe(set.n);
  const ours = hdbscan(set.data, set.n, dims, { minClusterSize: 15, exact: true });
  expect(adjustedRandIndex(ours.labels, rLabels)).toBeGreaterThanOrEqual(0.99);
  expect(ours.labels.filter((l) => l === -1).length).toBe(rLabels.filter((l) => l === -1).length);
});
