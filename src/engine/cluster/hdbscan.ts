/**
 * HDBSCAN over row-major Float32 vectors, memory O(N·k) — never an N×N matrix.
 *
 * Conventions match R's `dbscan::hdbscan(x, minPts)` and McInnes' hdbscan library: the core distance of a point is
 * the distance to its minSamples-th nearest neighbour counting the point itself; mrd(a, b) = max(core a, core b,
 * |a − b|); clusters are extracted from the condensed tree (see condensed-tree.ts) with the root never a cluster.
 * Distances are computed in float32 by the WASM SIMD kernels (wasm-kernels.ts); everything after is float64.
 *
 * exact: true — core distances from blocked brute-force kNN, MST by Prim over the full mutual-reachability graph
 *   with distances computed on the fly (N²/2 distance evaluations, O(N) memory). Exact up to float32 rounding:
 *   agrees with R up to tie-breaking between (near-)equal distances. Cost O(N²·d): ~1 s at 10K×50, too slow at 100K.
 * exact: false — approximate in three places: (1) the 32-NN graph comes from k-means cells (knn.ts ivfKnn) plus
 *   one NN-descent pass, so some neighbours are missed and those core distances come out slightly too large;
 *   (2) the spanning tree is the exact minimum spanning forest of that graph (Borůvka), not of the full graph;
 *   (3) components the forest leaves apart are joined through candidate components chosen by centroid
 *   (spanning-tree.ts connectComponents). Everything after the spanning tree is exact. Work ≈ N^1.5·d.
 * Default: exact up to EXACT_UP_TO points, approximate above.
 *
 * metric "cosine" normalises rows and uses Euclidean distance on the unit sphere (monotone in cosine distance).
 */
import { distance64, exactCoreDistances, exactKnn, ivfKnn, refineDistances, refineWithNeighboursOfNeighbours, type KnnGraph } from "./knn.ts";
import { condense, labelPoints, selectClusters, singleLinkage, type SelectionMethod } from "./condensed-tree.ts";
import { connectComponents, exactMutualReachabilityMst, knnMutualReachabilityForest, type SpanningEdges } from "./spanning-tree.ts";
import { UnionFind } from "./union-find.ts";

export interface HdbscanOptions {
  minClusterSize: number;
  /** Defaults to minClusterSize (R's minPts plays both roles). */
  minSamples?: number;
  clusterSelectionEpsilon?: number;
  clusterSelectionMethod?: SelectionMethod;
  metric?: "euclidean" | "cosine";
  /** Default: n ≤ EXACT_UP_TO. */
  exact?: boolean;
  /** Called with the running stage (pca, knn, mst, connect, tree) and its completed fraction 0..1. */
  onProgress?: (stage: string, fraction: number) => void;
}

export interface HdbscanResult {
  /** Cluster per point, 0..k−1; noise is −1. */
  labels: Int32Array;
  probabilities: Float32Array;
  /** Milliseconds per stage (pca, knn, mst, connect, tree, as run). */
  timings: Record<string, number>;
  exact: boolean;
  /** Components of the kNN graph's spanning forest before joining (approximate mode only). */
  knnComponents?: number;
}

/** Largest input clustered exactly by default: ~1 s at 10K×50 on one core, growing as N² (~9 s at 30K). */
export const EXACT_UP_TO = 10_000;

/**
 * Neighbours the approximate kNN graph keeps (at least minSamples). With 32 its spanning forest gave the exact
 * labels (ARI 1.000 against exact mode) on 20K face-like points; with 16, 0.985.
 */
const GRAPH_NEIGHBOURS = 32;

export function hdbscan(data: Float32Array, n: number, dims: number, opts: HdbscanOptions): HdbscanResult {
  const timings: Record<string, number> = {};
  const progress = opts.onProgress ?? (() => {});
  let mark = performance.now();
  const lap = (stage: string): void => {
    const now = performance.now();
    timings[stage] = now - mark;
    mark = now;
    progress(stage, 1);
  };
  const minClusterSize = opts.minClusterSize;
  const minSamples = opts.minSamples ?? minClusterSize;
  if (!(minClusterSize >= 2)) throw new Error("minClusterSize must be at least 2");
  if (!(minSamples >= 1)) throw new Error("minSamples must be at least 1");
  if (data.length < n * dims) throw new Error(`expected ${n}×${dims} values, got ${data.length}`);
  const exact = opts.exact ?? n <= EXACT_UP_TO;
  // The root is never a cluster and every other one is smaller than n: with n ≤ minClusterSize all is noise. Said
  // up front, since a huge minClusterSize is also the default minSamples, and k = n neighbours each is N×N memory.
  if (n < 2 || n <= minClusterSize) {
    return { labels: new Int32Array(n).fill(-1), probabilities: new Float32Array(n), timings, exact };
  }
  const rows = opts.metric === "cosine" ? normalizedRows(data, n, dims) : data.subarray(0, n * dims);

  const k = Math.min(n, exact ? minSamples : Math.max(minSamples, GRAPH_NEIGHBOURS));
  progress("knn", 0);
  const graph: KnnGraph = exact
    ? exactKnn(rows, n, dims, k, (f) => progress("knn", f))
    : refineWithNeighboursOfNeighbours(
      ivfKnn(rows, n, dims, k, {}, (f) => progress("knn", 0.8 * f)), rows, n, dims, (f) => progress("knn", 0.8 + 0.2 * f));
  const core = refineDistances(graph, rows, n, dims).core(Math.min(minSamples, n) - 1);
  // An approximate list shorter than minSamples leaves an infinite core distance, which no spanning edge can cross.
  const short: number[] = [];
  for (let i = 0; i < n; i++) if (core[i] === Infinity) short.push(i);
  if (short.length > 0) exactCoreDistances(rows, n, dims, short, Math.min(minSamples, n) - 1).forEach((c, s) => (core[short[s]!] = c));
  lap("knn");

  let edges: SpanningEdges;
  let knnComponents: number | undefined;
  progress("mst", 0);
  if (exact) {
    edges = exactMutualReachabilityMst(rows, n, dims, core, (f) => progress("mst", f));
    lap("mst");
  } else {
    edges = { from: new Int32Array(n - 1), to: new Int32Array(n - 1), weight: new Float64Array(n - 1), count: 0 };
    const sets = new UnionFind(n);
    knnMutualReachabilityForest(graph, n, core, edges, sets);
    knnComponents = sets.components;
    lap("mst");
    progress("connect", 0);
    connectComponents(rows, n, dims, core, edges, sets, 8, (f) => progress("connect", f));
    lap("connect");
  }

  // Spanning edges were chosen on float32 distances; their weights are recomputed in float64.
  for (let e = 0; e < edges.count; e++) {
    const a = edges.from[e]!, b = edges.to[e]!;
    edges.weight[e] = Math.max(core[a]!, core[b]!, distance64(rows, dims, a, b));
  }
  progress("tree", 0);
  const tree = condense(singleLinkage(edges, n), n, minClusterSize);
  const selected = selectClusters(tree, opts.clusterSelectionMethod ?? "eom", opts.clusterSelectionEpsilon ?? 0);
  const { labels, probabilities } = labelPoints(tree, selected);
  lap("tree");
  return { labels, probabilities, timings, exact, ...(knnComponents === undefined ? {} : { knnComponents }) };
}

function normalizedRows(data: Float32Array, n: number, dims: number): Float32Array {
  const out = new Float32Array(n * dims);
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < dims; k++) s += data[i * dims + k]! ** 2;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let k = 0; k < dims; k++) out[i * dims + k] = data[i * dims + k]! * inv;
  }
  return out;
}

