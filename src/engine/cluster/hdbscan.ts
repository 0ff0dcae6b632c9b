/**
 * HDBSCAN over row-major Float32 vectors, memory O(N·k) — never an N×N matrix.
 *
 * Conventions match R's `dbscan::hdbscan(x, minPts)` and McInnes' hdbscan library: the core distance of a point is
 * the distance to its minSamples-th nearest neighbour counting the point itself; mrd(a, b) = max(core a, core b,
 * |a − b|); clusters are extracted from the condensed tree (see condensed-tree.ts) with the root never a cluster.
 *
 * exact: true — everything is exact: core distances from blocked brute-force kNN, MST by Prim over the full
 *   mutual-reachability graph with distances computed on the fly (N²/2 distance evaluations, O(N) memory).
 *   Agrees with R up to tie-breaking between equal distances.
 * exact: false (default) — approximate where noted: kNN from a USearch HNSW index (so core distances are exact
 *   only when HNSW recall is), the MST is the exact minimum spanning forest of the kNN graph (Borůvka), and the
 *   remaining components are joined through HNSW candidate edges from probe points (spanning-tree.ts,
 *   connectComponents). Those last edges sit above every within-component edge, so they shape only the top of
 *   the hierarchy. Everything after the spanning tree is exact.
 *
 * metric "cosine" normalises rows and uses Euclidean distance on the unit sphere (monotone in cosine distance).
 */
import { approximateKnn, exactKnn, exactKnnOfQueries, type KnnGraph } from "./knn.ts";
import { condense, labelPoints, selectClusters, singleLinkage, type SelectionMethod } from "./condensed-tree.ts";
import { connectComponents, exactMutualReachabilityMst, knnMutualReachabilityForest, type SpanningEdges } from "./spanning-tree.ts";
import { UnionFind } from "./union-find.ts";
import { availableParallelism } from "node:os";

export interface HdbscanOptions {
  minClusterSize: number;
  /** Defaults to minClusterSize (R's minPts plays both roles). */
  minSamples?: number;
  clusterSelectionEpsilon?: number;
  clusterSelectionMethod?: SelectionMethod;
  metric?: "euclidean" | "cosine";
  exact?: boolean;
  onProgress?: (stage: string, fraction: number) => void;
}

export interface HdbscanResult {
  /** Cluster per point, 0..k−1; noise is −1. */
  labels: Int32Array;
  probabilities: Float32Array;
  /** Milliseconds per stage. */
  timings: Record<string, number>;
}

/** Neighbours the approximate kNN graph keeps beyond minSamples; more edges make its forest closer to the MST. */
const GRAPH_NEIGHBOURS = 16;

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
  if (n < 2) {
    return { labels: new Int32Array(n).fill(-1), probabilities: new Float32Array(n), timings };
  }
  const rows = opts.metric === "cosine" ? normalizedRows(data, n, dims) : data.subarray(0, n * dims);
  const threads = Math.max(1, availableParallelism());

  const k = Math.min(n, opts.exact ? minSamples : Math.max(minSamples, GRAPH_NEIGHBOURS));
  const hnsw = opts.exact ? undefined : approximateKnn(rows, n, dims, k, threads);
  const graph: KnnGraph = hnsw ? hnsw.graph : exactKnn(rows, n, dims, k, (f) => progress("knn", f));
  const core = new Float64Array(n);
  const coreRank = Math.min(minSamples, n) - 1;
  for (let i = 0; i < n; i++) core[i] = graph.distances[i * graph.k + coreRank]!;
  lap("knn");

  let edges: SpanningEdges;
  if (opts.exact) {
    edges = exactMutualReachabilityMst(rows, n, dims, core, (f) => progress("mst", f));
    lap("mst");
  } else {
    edges = { from: new Int32Array(n - 1), to: new Int32Array(n - 1), weight: new Float64Array(n - 1), count: 0 };
    const sets = new UnionFind(n);
    knnMutualReachabilityForest(graph, n, core, edges, sets);
    timings.knnComponents = sets.components;
    lap("mst");
    connectComponents(graph, n, core, edges, sets, (points, kq) => {
      const queries = new Float32Array(points.length * dims);
      for (let i = 0; i < points.length; i++) queries.set(rows.subarray(points[i]! * dims, (points[i]! + 1) * dims), i * dims);
      // HNSW recall drops when asked for a large share of the data; an exact scan of a few probes is cheap there.
      return kq * 4 > n ? exactKnnOfQueries(rows, n, dims, queries, kq) : hnsw!.search(queries, kq);
    });
    lap("connect");
  }

  const tree = condense(singleLinkage(edges, n), n, minClusterSize);
  const selected = selectClusters(tree, opts.clusterSelectionMethod ?? "eom", opts.clusterSelectionEpsilon ?? 0);
  const { labels, probabilities } = labelPoints(tree, selected);
  lap("tree");
  return { labels, probabilities, timings };
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

