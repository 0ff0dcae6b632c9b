// k-nearest-neighbour lists, self included at rank 0 (the convention R's dbscan and the hdbscan library use for
// core distances). Exact: blocked brute force, O(N·k) memory. Approximate: USearch HNSW.
import { loadUSearch } from "../native.ts";
import { squaredDistances4, squaredNorms } from "./distance-kernels.ts";

export interface KnnGraph {
  k: number;
  /** n·k neighbour ids, row i sorted by ascending distance. */
  indices: Int32Array;
  /** n·k Euclidean distances matching `indices`. */
  distances: Float32Array;
}

const COLUMN_BLOCK = 2048;

export function exactKnn(
  data: Float32Array, n: number, dims: number, k: number, onProgress?: (fraction: number) => void,
): KnnGraph {
  k = Math.min(k, n);
  const norms = squaredNorms(data, n, dims);
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  const block = new Float64Array(4 * COLUMN_BLOCK);
  const heapD = new Float64Array(4 * k);
  const heapI = new Int32Array(4 * k);
  const heapSize = new Int32Array(4);
  for (let q = 0; q < n; q += 4) {
    heapSize.fill(0);
    const rows = Math.min(4, n - q);
    for (let from = 0; from < n; from += COLUMN_BLOCK) {
      const to = Math.min(n, from + COLUMN_BLOCK);
      squaredDistances4(data, norms, n, dims, q, from, to, block, COLUMN_BLOCK);
      for (let r = 0; r < rows; r++) {
        const base = r * k, row = r * COLUMN_BLOCK;
        for (let j = from; j < to; j++) {
          let d = block[row + j - from]!;
          if (d < 0) d = 0;
          if (j === q + r) d = 0;
          const size = heapSize[r]!;
          if (size < k) {
            heapPush(heapD, heapI, base, size, d, j);
            heapSize[r] = size + 1;
          } else if (d < heapD[base]!) {
            heapReplaceTop(heapD, heapI, base, k, d, j);
          }
        }
      }
    }
    for (let r = 0; r < rows; r++) drainSorted(heapD, heapI, r * k, k, (q + r) * k, indices, distances);
    if (onProgress && (q & 1023) === 0) onProgress(q / n);
  }
  return { k, indices, distances };
}

export interface HnswNeighbours {
  graph: KnnGraph;
  /** Approximate neighbours of arbitrary query rows (not self-adjusted), for joining components later. */
  search(queries: Float32Array, k: number): KnnGraph;
}

export function approximateKnn(data: Float32Array, n: number, dims: number, k: number, threads: number): HnswNeighbours {
  k = Math.min(k, n);
  const usearch = loadUSearch();
  const index = new usearch.Index({
    dimensions: dims,
    metric: usearch.MetricKind.L2sq,
    quantization: usearch.ScalarKind.F32,
    connectivity: 16,
    expansion_add: 128,
    expansion_search: Math.max(64, 2 * k),
    multi: false,
  });
  const keys = new BigUint64Array(n);
  for (let i = 0; i < n; i++) keys[i] = BigInt(i);
  index.add(keys, data, threads);
  const result = searchBatch(index, data, k, threads);
  const indices = new Int32Array(n * k);
  const distances = new Float32Array(n * k);
  for (let i = 0; i < n; i++) {
    const found = Number(result.counts[i]);
    const out = i * k;
    // HNSW may miss the query itself (e.g. among duplicates); keep it at rank 0 so core distances count it.
    indices[out] = i;
    distances[out] = 0;
    let w = 1;
    for (let r = 0; r < found && w < k; r++) {
      const j = Number(result.keys[i * k + r]);
      if (j === i) continue;
      indices[out + w] = j;
      distances[out + w] = Math.sqrt(Math.max(0, result.distances[i * k + r]!));
      w++;
    }
    for (; w < k; w++) {
      indices[out + w] = indices[out + w - 1]!;
      distances[out + w] = Infinity;
    }
  }
  const search = (queries: Float32Array, kq: number): KnnGraph => {
    kq = Math.min(kq, n);
    const m = queries.length / dims;
    const found = searchBatch(index, queries, kq, threads);
    const ids = new Int32Array(m * kq), dists = new Float32Array(m * kq).fill(Infinity);
    for (let q = 0; q < m; q++) {
      const count = Number(found.counts[q]);
      for (let r = 0; r < count; r++) {
        ids[q * kq + r] = Number(found.keys[q * kq + r]);
        dists[q * kq + r] = Math.sqrt(Math.max(0, found.distances[q * kq + r]!));
      }
    }
    return { k: kq, indices: ids, distances: dists };
  };
  return { graph: { k, indices, distances }, search };
}

type UIndex = InstanceType<ReturnType<typeof loadUSearch>["Index"]>;

// A single query comes back as Matches without counts; give both shapes the batch layout.
function searchBatch(index: UIndex, queries: Float32Array, k: number, threads: number) {
  const result = index.search(queries, k, threads) as { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array };
  const counts = result.counts ?? BigUint64Array.of(BigInt(result.keys.length));
  return { keys: result.keys, distances: result.distances, counts };
}

/** Exact neighbours of a few query rows among all n rows; used when HNSW is asked for a large share of the data. */
export function exactKnnOfQueries(
  data: Float32Array, n: number, dims: number, queries: Float32Array, k: number,
): KnnGraph {
  k = Math.min(k, n);
  const m = queries.length / dims;
  const all = new Float32Array((n + m) * dims);
  all.set(data.subarray(0, n * dims));
  all.set(queries, n * dims);
  const norms = squaredNorms(all, n + m, dims);
  const indices = new Int32Array(m * k), distances = new Float32Array(m * k);
  const d2 = new Float64Array(4 * n);
  const order = new Int32Array(n);
  for (let q = 0; q < m; q += 4) {
    squaredDistances4(all, norms, n + m, dims, n + q, 0, n, d2, n);
    for (let r = 0; r < 4 && q + r < m; r++) {
      const row = d2.subarray(r * n, (r + 1) * n);
      for (let j = 0; j < n; j++) order[j] = j;
      const top = order.sort((a, b) => row[a]! - row[b]! || a - b).subarray(0, k);
      for (let t = 0; t < k; t++) {
        indices[(q + r) * k + t] = top[t]!;
        distances[(q + r) * k + t] = Math.sqrt(Math.max(0, row[top[t]!]!));
      }
    }
  }
  return { k, indices, distances };
}

function heapPush(hd: Float64Array, hi: Int32Array, base: number, size: number, d: number, j: number): void {
  let c = size;
  while (c > 0) {
    const p = (c - 1) >> 1;
    if (hd[base + p]! >= d) break;
    hd[base + c] = hd[base + p]!;
    hi[base + c] = hi[base + p]!;
    c = p;
  }
  hd[base + c] = d;
  hi[base + c] = j;
}

function heapReplaceTop(hd: Float64Array, hi: Int32Array, base: number, size: number, d: number, j: number): void {
  let c = 0;
  for (;;) {
    const l = 2 * c + 1;
    if (l >= size) break;
    const r = l + 1;
    const m = r < size && hd[base + r]! > hd[base + l]! ? r : l;
    if (hd[base + m]! <= d) break;
    hd[base + c] = hd[base + m]!;
    hi[base + c] = hi[base + m]!;
    c = m;
  }
  hd[base + c] = d;
  hi[base + c] = j;
}

function drainSorted(
  hd: Float64Array, hi: Int32Array, base: number, k: number, out: number, indices: Int32Array, distances: Float32Array,
): void {
  for (let size = k; size > 0; size--) {
    indices[out + size - 1] = hi[base]!;
    distances[out + size - 1] = Math.sqrt(hd[base]!);
    const lastD = hd[base + size - 1]!, lastI = hi[base + size - 1]!;
    heapReplaceTop(hd, hi, base, size - 1, lastD, lastI);
  }
}
