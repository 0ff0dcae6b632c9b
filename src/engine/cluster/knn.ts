// k-nearest-neighbour lists, self included at rank 0 (the convention R's dbscan and the hdbscan library use for
// core distances). Memory O(N·k). Both searches run on the WASM SIMD distance kernel (wasm-kernels.ts):
// - exactKnn: blocked brute force over all N² pairs; exact up to float32 rounding of the distances.
// - ivfKnn: approximate. k-means cells (≈√N of them, trained on a sample); every point searches exhaustively in
//   the `probes` cells whose centroids are nearest to it. Work ≈ N·probes·√N pairs instead of N².
import { mulberry32 } from "../seeded-random.ts";
import { Kernels, paddedDims } from "./wasm-kernels.ts";

export interface KnnGraph {
  k: number;
  /** n·k neighbour ids, row i sorted by ascending distance. */
  indices: Int32Array;
  /** n·k Euclidean distances matching `indices`. */
  distances: Float32Array;
}

/** Bounded max-heaps of squared distances, one per query; the root is the current k-th best. */
export class NeighbourHeaps {
  readonly dist: Float64Array;
  readonly ids: Int32Array;
  readonly size: Int32Array;
  constructor(readonly m: number, readonly k: number) {
    this.dist = new Float64Array(m * k);
    this.ids = new Int32Array(m * k);
    this.size = new Int32Array(m);
  }

  bound(q: number): number {
    return this.size[q]! < this.k ? Infinity : this.dist[q * this.k]!;
  }

  offer(q: number, d: number, id: number): void {
    const k = this.k, base = q * k, size = this.size[q]!;
    const hd = this.dist, hi = this.ids;
    if (size < k) {
      let c = size;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (hd[base + p]! >= d) break;
        hd[base + c] = hd[base + p]!; hi[base + c] = hi[base + p]!;
        c = p;
      }
      hd[base + c] = d; hi[base + c] = id;
      this.size[q] = size + 1;
    } else if (d < hd[base]!) {
      siftDown(hd, hi, base, k, d, id);
    }
  }

  /** Empties heap q into out rows sorted ascending, as Euclidean distances; unfilled ranks get Infinity. */
  drain(q: number, indices: Int32Array, distances: Float32Array, out: number): void {
    const base = q * this.k;
    let size = this.size[q]!;
    for (let r = size; r < this.k; r++) { indices[out + r] = size > 0 ? this.ids[base]! : q; distances[out + r] = Infinity; }
    for (; size > 0; size--) {
      indices[out + size - 1] = this.ids[base]!;
      distances[out + size - 1] = Math.sqrt(this.dist[base]!);
      siftDown(this.dist, this.ids, base, size - 1, this.dist[base + size - 1]!, this.ids[base + size - 1]!);
    }
    this.size[q] = 0;
  }
}

function siftDown(hd: Float64Array, hi: Int32Array, base: number, size: number, d: number, id: number): void {
  let c = 0;
  for (;;) {
    const l = 2 * c + 1;
    if (l >= size) break;
    const r = l + 1;
    const m = r < size && hd[base + r]! > hd[base + l]! ? r : l;
    if (hd[base + m]! <= d) break;
    hd[base + c] = hd[base + m]!; hi[base + c] = hi[base + m]!;
    c = m;
  }
  hd[base + c] = d; hi[base + c] = id;
}

/**
 * Rows laid out for the kernels: `count` padded rows (a multiple of 2, zero rows at the end), their squared
 * norms, and the original id of every row (−1 for padding). Groups (k-means cells, components) are padded to an
 * even length each so every group can be scanned on its own.
 */
export class RowLayout {
  readonly stride: number;
  readonly rows: number;
  readonly norms: number;
  readonly ids: Int32Array;
  readonly groupStart: Int32Array;
  private readonly scratch: number;
  private readonly out: number;
  private readonly selfIds = [-1, -1, -1, -1];

  constructor(
    readonly kernels: Kernels, data: Float32Array, dims: number,
    /** Rows of each group in order; one group of all rows when omitted. */
    groups: ArrayLike<number>[],
  ) {
    const p = paddedDims(dims);
    this.stride = p * 4;
    let count = 0;
    this.groupStart = new Int32Array(groups.length + 1);
    groups.forEach((g, i) => { this.groupStart[i] = count; count += g.length + (g.length & 1); });
    this.groupStart[groups.length] = count;
    this.ids = new Int32Array(count).fill(-1);
    this.rows = kernels.alloc(count * this.stride);
    this.norms = kernels.alloc(count * 4);
    this.scratch = kernels.alloc(64);
    this.out = kernels.alloc(24 * BLOCK);
    const view = kernels.f32(this.rows, count * p);
    const norms = kernels.f32(this.norms, count);
    groups.forEach((g, gi) => {
      let slot = this.groupStart[gi]!;
      for (let t = 0; t < g.length; t++, slot++) {
        const id = g[t]!;
        this.ids[slot] = id;
        let s = 0;
        for (let k = 0; k < dims; k++) {
          const v = data[id * dims + k]!;
          view[slot * p + k] = v;
          s += v * v;
        }
        norms[slot] = s;
      }
    });
  }

  /** Byte address of a slot's row. */
  address(slot: number): number { return this.rows + slot * this.stride; }

  normOf(slot: number): number { return this.kernels.F32[(this.norms >> 2) + slot]!; }

  /**
   * Offers every row of slots [from, to) (to − from even) that is closer than the sink's bound to the four query
   * rows (slots qSlots[0..3] of `queries`). A query never receives its own id.
   */
  scan(queries: RowLayout, qSlots: ArrayLike<number>, sink: ScanSink, from: number, to: number): void {
    const K = this.kernels;
    const F = K.F32, I = K.I32, s4 = this.scratch >> 2, selfIds = this.selfIds;
    for (let r = 0; r < 4; r++) {
      const slot = qSlots[r]!;
      I[s4 + r] = queries.address(slot);
      F[s4 + 4 + r] = queries.normOf(slot);
      F[s4 + 8 + r] = sink.bound(r);
      selfIds[r] = queries.ids[slot]!;
    }
    for (let start = from; start < to; start += BLOCK) {
      const end = Math.min(to, start + BLOCK);
      const records = K.fn.distances4x2(this.scratch, this.address(start), end - start, this.stride, this.norms + start * 4, this.scratch + 16, this.scratch + 32, this.out);
      if (records === 0) continue;
      const o4 = this.out >> 2;
      for (let e = 0; e < records; e++) {
        const rec = o4 + e * 6;
        const id = this.ids[start + I[rec]!]!;
        if (id < 0) continue;
        const mask = I[rec + 1]!;
        for (let r = 0; r < 4; r++) {
          if (!(mask & (1 << r)) || id === selfIds[r]) continue;
          let d = F[rec + 2 + r]!;
          if (d < 0) d = 0;
          if (d < sink.bound(r)) sink.offer(r, d, id);
        }
      }
      for (let r = 0; r < 4; r++) F[s4 + 8 + r] = sink.bound(r);
    }
  }
}

/** Receives rows found by RowLayout.scan; bounds are on squared distance (−1 for an unused lane). */
export interface ScanSink {
  bound(lane: number): number;
  offer(lane: number, squaredDistance: number, id: number): void;
}

/** Lanes 0..3 feed heaps heapOf[r] (−1: unused lane). */
class HeapSink implements ScanSink {
  readonly heapOf = [0, 0, 0, 0];
  constructor(private readonly heaps: NeighbourHeaps) {}
  bound(r: number): number { const h = this.heapOf[r]!; return h < 0 ? -1 : this.heaps.bound(h); }
  offer(r: number, d: number, id: number): void { this.heaps.offer(this.heapOf[r]!, d, id); }
}

/** Euclidean distance in float64 (the kernels work in float32; final weights are recomputed with this). */
export function distance64(data: Float32Array, dims: number, a: number, b: number): number {
  let s = 0;
  const oa = a * dims, ob = b * dims;
  for (let k = 0; k < dims; k++) {
    const d = data[oa + k]! - data[ob + k]!;
    s += d * d;
  }
  return Math.sqrt(s);
}

/**
 * Recomputes every listed neighbour's distance in float64 and re-sorts each row (distance, then id). The float32
 * kernel's rounding would otherwise turn near-equal distances into exact ties and shift core distances slightly.
 */
export function refineDistances(graph: KnnGraph, data: Float32Array, n: number, dims: number): { core: (rank: number) => Float64Array } {
  const { k, indices } = graph;
  const exact = new Float64Array(n * k);
  const order = new Int32Array(k);
  const ids = new Int32Array(k), dist = new Float64Array(k);
  for (let i = 0; i < n; i++) {
    const base = i * k;
    for (let r = 0; r < k; r++) {
      ids[r] = indices[base + r]!;
      dist[r] = graph.distances[base + r] === Infinity ? Infinity : ids[r] === i ? 0 : distance64(data, dims, i, ids[r]!);
      order[r] = r;
    }
    order.sort((x, y) => dist[x]! - dist[y]! || ids[x]! - ids[y]!);
    for (let r = 0; r < k; r++) {
      indices[base + r] = ids[order[r]!]!;
      exact[base + r] = dist[order[r]!]!;
      graph.distances[base + r] = dist[order[r]!]!;
    }
  }
  return { core: (rank) => { const c = new Float64Array(n); for (let i = 0; i < n; i++) c[i] = exact[i * k + rank]!; return c; } };
}

/**
 * Core distances of `points` (the distance to the (rank + 1)-th nearest point, counting the point itself), by brute
 * force: for the few points whose approximate neighbour list came up shorter than rank + 1.
 */
export function exactCoreDistances(data: Float32Array, n: number, dims: number, points: number[], rank: number): Float64Array {
  const out = new Float64Array(points.length);
  const d = new Float64Array(n);
  points.forEach((p, i) => {
    for (let j = 0; j < n; j++) d[j] = distance64(data, dims, p, j);
    out[i] = d.sort()[Math.min(rank, n - 1)]!;
  });
  return out;
}

const NN_DESCENT_FANOUT = 16;

/** Rows per kernel call; thresholds tighten between calls. */
const BLOCK = 1024;

const allRows = (n: number): Int32Array => { const a = new Int32Array(n); for (let i = 0; i < n; i++) a[i] = i; return a; };

/** Self at rank 0 with distance 0, so core distances count the point itself even among duplicates. */
function seedSelf(heaps: NeighbourHeaps, n: number): void {
  for (let i = 0; i < n; i++) heaps.offer(i, 0, i);
}

function drainAll(heaps: NeighbourHeaps, n: number, k: number): KnnGraph {
  const indices = new Int32Array(n * k), distances = new Float32Array(n * k);
  for (let i = 0; i < n; i++) heaps.drain(i, indices, distances, i * k);
  return { k, indices, distances };
}

export function exactKnn(
  data: Float32Array, n: number, dims: number, k: number, onProgress?: (fraction: number) => void,
): KnnGraph {
  k = Math.min(k, n);
  const layout = new RowLayout(new Kernels(), data, dims, [allRows(n)]);
  const heaps = new NeighbourHeaps(n, k);
  seedSelf(heaps, n);
  const slots = [0, 0, 0, 0], sink = new HeapSink(heaps), heapOf = sink.heapOf;
  const total = layout.groupStart[1]!;
  for (let q = 0; q < n; q += 4) {
    for (let r = 0; r < 4; r++) { slots[r] = Math.min(q + r, n - 1); heapOf[r] = q + r < n ? q + r : -1; }
    layout.scan(layout, slots, sink, 0, total);
    if (onProgress && (q & 1023) === 0) onProgress(q / n);
  }
  return drainAll(heaps, n, k);
}

export interface IvfOptions {
  /** Cells each point searches; more is slower and closer to exact. Default 10. */
  probes?: number;
  seed?: number;
}

export function ivfKnn(
  data: Float32Array, n: number, dims: number, k: number, opts: IvfOptions = {}, onProgress?: (fraction: number) => void,
): KnnGraph {
  k = Math.min(k, n);
  const cells = Math.max(1, Math.round(Math.sqrt(n)));
  // Enough cells that the points in them are about 3k: a large k (a large minSamples) asks for more neighbours than
  // 10 cells hold, and a short list has no core distance.
  const probes = Math.min(cells, Math.max(opts.probes ?? 10, Math.ceil((3 * k * cells) / n)));
  const kernels = new Kernels();
  const centroids = trainCentroids(data, n, dims, cells, opts.seed ?? 0x5eed);
  onProgress?.(0.1);
  // The `probes` nearest centroids of every point; the first is its own cell.
  const near = nearestRows(kernels, data, n, dims, centroids, cells, probes);
  const members: number[][] = Array.from({ length: cells }, () => []);
  for (let i = 0; i < n; i++) members[near.indices[i * probes]!]!.push(i);
  const layout = new RowLayout(kernels, data, dims, members);
  const slotOf = new Int32Array(n);
  for (let s = 0; s < layout.ids.length; s++) if (layout.ids[s]! >= 0) slotOf[layout.ids[s]!] = s;
  const heaps = new NeighbourHeaps(n, k);
  seedSelf(heaps, n);
  // Rank by rank (own cell first) so every heap is tight before the farther cells are scanned.
  const slots = [0, 0, 0, 0], sink = new HeapSink(heaps), heapOf = sink.heapOf;
  const askers: number[][] = Array.from({ length: cells }, () => []);
  for (let rank = 0; rank < probes; rank++) {
    for (const list of askers) list.length = 0;
    for (let i = 0; i < n; i++) askers[near.indices[i * probes + rank]!]!.push(i);
    for (let c = 0; c < cells; c++) {
      const list = askers[c]!;
      const from = layout.groupStart[c]!, to = layout.groupStart[c + 1]!;
      if (to === from) continue;
      for (let t = 0; t < list.length; t += 4) {
        for (let r = 0; r < 4; r++) {
          const q = list[Math.min(t + r, list.length - 1)]!;
          slots[r] = slotOf[q]!;
          heapOf[r] = t + r < list.length ? q : -1;
        }
        layout.scan(layout, slots, sink, from, to);
      }
    }
    onProgress?.(0.1 + (0.9 * (rank + 1)) / probes);
  }
  return drainAll(heaps, n, k);
}

/**
 * One round of NN-descent: every point also considers the nearest neighbours of its nearest neighbours (up to
 * 15 × 15 candidates, distances in float64). A neighbour of a neighbour is very likely a neighbour, so this
 * repairs most of what the cells missed.
 */
export function refineWithNeighboursOfNeighbours(
  graph: KnnGraph, data: Float32Array, n: number, dims: number, onProgress?: (fraction: number) => void,
): KnnGraph {
  const { k, indices } = graph;
  const fanout = Math.min(k, NN_DESCENT_FANOUT);
  const heaps = new NeighbourHeaps(n, k);
  const seen = new Int32Array(n).fill(-1);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < k; r++) {
      const j = indices[i * k + r]!, d = graph.distances[i * k + r]!;
      if (seen[j] === i || d === Infinity) continue;
      seen[j] = i;
      heaps.offer(i, d * d, j);
    }
    for (let r = 1; r < fanout; r++) {
      const j = indices[i * k + r]!;
      for (let t = 1; t < fanout; t++) {
        const l = indices[j * k + t]!;
        if (seen[l] === i) continue;
        seen[l] = i;
        const bound = heaps.bound(i);
        let s = 0;
        const oi = i * dims, ol = l * dims;
        for (let c = 0; c < dims && s < bound; c++) { const x = data[oi + c]! - data[ol + c]!; s += x * x; }
        if (s < bound) heaps.offer(i, s, l);
      }
    }
    if (onProgress && (i & 4095) === 0) onProgress(i / n);
  }
  return drainAll(heaps, n, k);
}

/** The `k` nearest of `count` rows (row-major, `dims` wide) for each of n points, exactly. */
export function nearestRows(
  kernels: Kernels, data: Float32Array, n: number, dims: number, rows: Float32Array, count: number, k: number,
): KnnGraph {
  k = Math.min(k, count);
  const target = new RowLayout(kernels, rows, dims, [allRows(count)]);
  const queries = new RowLayout(kernels, data, dims, [allRows(n)]);
  const heaps = new NeighbourHeaps(n, k);
  const slots = [0, 0, 0, 0], sink = new HeapSink(heaps), heapOf = sink.heapOf;
  const total = target.groupStart[1]!;
  // Row ids and query ids live in different spaces; offset the rows so "never your own id" never triggers.
  for (let s = 0; s < target.ids.length; s++) if (target.ids[s]! >= 0) target.ids[s]! += n;
  for (let q = 0; q < n; q += 4) {
    for (let r = 0; r < 4; r++) { slots[r] = Math.min(q + r, n - 1); heapOf[r] = q + r < n ? q + r : -1; }
    target.scan(queries, slots, sink, 0, total);
  }
  const graph = drainAll(heaps, n, k);
  for (let i = 0; i < graph.indices.length; i++) graph.indices[i]! -= n;
  return graph;
}

/** Lloyd's k-means on a seeded sample; a cell left empty keeps its previous centroid. */
function trainCentroids(data: Float32Array, n: number, dims: number, cells: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const sampleSize = Math.min(n, cells * 32);
  const pick = allRows(n);
  for (let i = 0; i < sampleSize; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = pick[i]!; pick[i] = pick[j]!; pick[j] = t;
  }
  const sample = new Float32Array(sampleSize * dims);
  for (let i = 0; i < sampleSize; i++) sample.set(data.subarray(pick[i]! * dims, (pick[i]! + 1) * dims), i * dims);
  const centroids = sample.slice(0, cells * dims);
  const sums = new Float64Array(cells * dims), counts = new Int32Array(cells);
  for (let iter = 0; iter < 6; iter++) {
    const scratch = new Kernels(); // a fresh small memory per round instead of growing one
    const assign = nearestRows(scratch, sample, sampleSize, dims, centroids, cells, 1);
    sums.fill(0); counts.fill(0);
    for (let i = 0; i < sampleSize; i++) {
      const c = assign.indices[i]!;
      counts[c]!++;
      for (let d = 0; d < dims; d++) sums[c * dims + d]! += sample[i * dims + d]!;
    }
    for (let c = 0; c < cells; c++) {
      if (counts[c] === 0) continue;
      for (let d = 0; d < dims; d++) centroids[c * dims + d] = sums[c * dims + d]! / counts[c]!;
    }
  }
  return centroids;
}
