// Minimum spanning trees of the mutual-reachability graph, mrd(a, b) = max(core(a), core(b), |a − b|).
import { nearestRows, RowLayout, type KnnGraph, type ScanSink } from "./knn.ts";
import { UnionFind } from "./union-find.ts";
import { copyRows, Kernels, paddedDims } from "./wasm-kernels.ts";

export interface SpanningEdges {
  from: Int32Array;
  to: Int32Array;
  weight: Float64Array;
  count: number;
}

function emptyEdges(n: number): SpanningEdges {
  const m = Math.max(0, n - 1);
  return { from: new Int32Array(m), to: new Int32Array(m), weight: new Float64Array(m), count: 0 };
}

function pushEdge(edges: SpanningEdges, a: number, b: number, w: number): void {
  edges.from[edges.count] = a;
  edges.to[edges.count] = b;
  edges.weight[edges.count] = w;
  edges.count++;
}

/**
 * Exact MST by Prim's algorithm with distances computed on the fly: one pass over the N²/2 pairs and O(N) memory.
 * Brute-force Borůvka would repeat that pass every round, so Prim is the cheaper exact choice here. Points still
 * outside the tree are kept packed at the front of the kernel's row block, so each step scans only them; the WASM
 * primStep kernel does four rows per iteration (distances in float32).
 */
export function exactMutualReachabilityMst(
  data: Float32Array, n: number, dims: number, core: Float64Array, onProgress?: (fraction: number) => void,
): SpanningEdges {
  const edges = emptyEdges(n);
  if (n < 2) return edges;
  const K = new Kernels();
  const p = paddedDims(dims), stride = p * 4;
  const rows = copyRows(K, data, n, dims, 1); // one spare row for swaps
  const norms = K.alloc(n * 4), coreAt = K.alloc(n * 4), best = K.alloc(n * 4), from = K.alloc(n * 4), ids = K.alloc(n * 4);
  const consts = K.alloc(48), minOut = K.alloc(32), query = K.alloc(stride);
  const F = K.F32, I = K.I32;
  const R = rows >> 2, N = norms >> 2, C = coreAt >> 2, B = best >> 2, Fr = from >> 2, Id = ids >> 2;
  for (let i = 0; i < n; i++) {
    let s = 0;
    for (let k = 0; k < p; k++) s += F[R + i * p + k]! ** 2;
    F[N + i] = s;
    F[C + i] = core[i]!;
    F[B + i] = Infinity;
    I[Fr + i] = -1;
    I[Id + i] = i;
  }
  const slotOf = new Int32Array(n);
  for (let i = 0; i < n; i++) slotOf[i] = i;
  const swap = (a: number, b: number): void => {
    if (a === b) return;
    F.copyWithin(R + n * p, R + a * p, R + (a + 1) * p);
    F.copyWithin(R + a * p, R + b * p, R + (b + 1) * p);
    F.copyWithin(R + b * p, R + n * p, R + (n + 1) * p);
    for (const base of [N, C, B]) { const t = F[base + a]!; F[base + a] = F[base + b]!; F[base + b] = t; }
    for (const base of [Fr, Id]) { const t = I[base + a]!; I[base + a] = I[base + b]!; I[base + b] = t; }
    slotOf[I[Id + a]!] = a;
    slotOf[I[Id + b]!] = b;
  };
  const Q = query >> 2, K4 = consts >> 2, M = minOut >> 2;
  let remaining = n;
  let current = 0; // slot of the point joining the tree; R's Prim also starts from point 0
  while (remaining > 1) {
    const last = remaining - 1;
    swap(current, last);
    const joined = I[Id + last]!;
    remaining = last;
    // The joining row moves to a fixed query buffer, so the packed block [0, remaining) can be scanned whole.
    F.copyWithin(Q, R + last * p, R + (last + 1) * p);
    const qn = F[N + last]!, qc = F[C + last]!;
    for (let r = 0; r < 4; r++) { F[K4 + r] = qn; F[K4 + 4 + r] = qc; I[K4 + 8 + r] = joined; }
    const whole = remaining & ~3;
    K.fn.primStep(query, rows, whole, stride, norms, coreAt, best, from, ids, consts, minOut);
    // The lightest key wins, the smaller id among equals (as R's dbscan).
    let min = Infinity, argmin = 0x7fffffff;
    for (let r = 0; r < 4; r++) {
      const v = F[M + r]!, at = I[M + 4 + r]!;
      if (v < min || (v === min && at < argmin)) { min = v; argmin = at; }
    }
    for (let j = whole; j < remaining; j++) {
      let dot = 0;
      for (let k = 0; k < p; k++) dot += F[Q + k]! * F[R + j * p + k]!;
      const d2 = qn + F[N + j]! - 2 * dot;
      let m = d2 > 0 ? Math.fround(Math.sqrt(d2)) : 0;
      if (F[C + j]! > m) m = F[C + j]!;
      if (qc > m) m = qc;
      if (m < F[B + j]!) { F[B + j] = m; I[Fr + j] = joined; }
      const v = F[B + j]!, at = I[Id + j]!;
      if (v < min || (v === min && at < argmin)) { min = v; argmin = at; }
    }
    current = slotOf[argmin]!;
    pushEdge(edges, I[Fr + current]!, argmin, min);
    if (onProgress && (remaining & 1023) === 0) onProgress(1 - (remaining * remaining) / (n * n));
  }
  return edges;
}

/** Orders edges by (weight, smaller id, larger id) so Borůvka never closes a cycle on ties. */
function lighter(w: number, a: number, b: number, bw: number, ba: number, bb: number): boolean {
  if (w !== bw) return w < bw;
  const lo = a < b ? a : b, blo = ba < bb ? ba : bb;
  if (lo !== blo) return lo < blo;
  return (a < b ? b : a) < (ba < bb ? bb : ba);
}

/**
 * Borůvka over the kNN graph, merging only through certified edges. An edge (a, b) missing from the graph has
 * |a − b| ≥ r_k(a), the distance to a's k-th listed neighbour, so a component's cheapest graph edge is its cheapest
 * edge overall when it weighs no more than the smallest r_k among the component's points. Components whose
 * cheapest graph edge is not certified (typically whole clusters larger than k) stay apart for connectComponents,
 * which searches between components directly. With exact kNN lists every merged edge is an MST edge.
 */
export function knnMutualReachabilityForest(
  graph: KnnGraph, n: number, core: Float64Array, edges: SpanningEdges, sets: UnionFind,
): void {
  const { k, indices, distances } = graph;
  const radius = new Float64Array(n);
  for (let a = 0; a < n; a++) {
    // Fewer than k neighbours listed means there were no more points: nothing is missing from the graph.
    const last = distances[a * k + k - 1]!;
    radius[a] = k >= n || last === Infinity ? Infinity : last;
  }
  const bestW = new Float64Array(n), bestA = new Int32Array(n), bestB = new Int32Array(n), minRadius = new Float64Array(n);
  for (;;) {
    bestW.fill(Infinity);
    bestA.fill(-1);
    minRadius.fill(Infinity);
    for (let a = 0; a < n; a++) {
      const ra = sets.find(a);
      if (radius[a]! < minRadius[ra]!) minRadius[ra] = radius[a]!;
      const ca = core[a]!;
      for (let r = 0; r < k; r++) {
        const b = indices[a * k + r]!;
        const d = distances[a * k + r]!;
        if (d === Infinity) break;
        if (sets.find(b) === ra) continue;
        let w = d;
        if (ca > w) w = ca;
        if (core[b]! > w) w = core[b]!;
        if (lighter(w, a, b, bestW[ra]!, bestA[ra]!, bestB[ra]!)) {
          bestW[ra] = w; bestA[ra] = a; bestB[ra] = b;
        }
      }
    }
    let added = 0;
    for (let c = 0; c < n; c++) {
      if (bestA[c]! < 0 || bestW[c]! > minRadius[c]!) continue;
      if (sets.union(bestA[c]!, bestB[c]!)) {
        pushEdge(edges, bestA[c]!, bestB[c]!, bestW[c]!);
        added++;
      }
    }
    if (added === 0) return;
  }
}

/** Components above this many points search with only their points nearest the other component. */
const BOUNDARY_POINTS = 256;

/**
 * Joins the components left by the kNN forest, Borůvka-style: every round, each component takes the cheapest
 * mutual-reachability edge between its points and the points of the `candidates` components whose centroids are
 * nearest its own (pairs scanned exhaustively by the distance kernel; a component above 256 points offers only its
 * 256 points nearest the other centroid). Approximate: the true cheapest edge can lead to a component outside the
 * candidates or start from a point outside those 256. With candidates ≥ the number of components and no component
 * above 256 points it is exact.
 */
export function connectComponents(
  data: Float32Array, n: number, dims: number, core: Float64Array, edges: SpanningEdges, sets: UnionFind,
  candidates = 8, onProgress?: (fraction: number) => void,
): void {
  const start = sets.components;
  const bestW = new Float64Array(n), bestA = new Int32Array(n), bestB = new Int32Array(n);
  while (sets.components > 1) {
    const groups = [...componentMembers(sets, n).values()];
    const C = groups.length;
    const centroids = new Float32Array(C * dims);
    groups.forEach((g, c) => {
      for (const i of g) for (let k = 0; k < dims; k++) centroids[c * dims + k]! += data[i * dims + k]!;
      for (let k = 0; k < dims; k++) centroids[c * dims + k]! /= g.length;
    });
    const kernels = new Kernels();
    const near = nearestRows(kernels, centroids, C, dims, centroids, C, Math.min(C, candidates + 1));
    const layout = new RowLayout(kernels, data, dims, groups);
    const slotOf = new Int32Array(n);
    for (let s = 0; s < layout.ids.length; s++) if (layout.ids[s]! >= 0) slotOf[layout.ids[s]!] = s;
    const sink = new LightestEdgeSink(core);
    const slots = [0, 0, 0, 0];
    for (let a = 0; a < C; a++) {
      const root = sets.find(groups[a]![0]!);
      sink.reset();
      for (let r = 0; r < near.k; r++) {
        const b = near.indices[a * near.k + r]!;
        if (b === a || near.distances[a * near.k + r] === Infinity) continue;
        const mark = kernels.mark();
        const queries = nearestTo(groups[a]!, data, dims, centroids, b);
        let rows = layout, from = layout.groupStart[b]!, to = layout.groupStart[b + 1]!;
        if (groups[b]!.length > BOUNDARY_POINTS) {
          rows = new RowLayout(kernels, data, dims, [nearestTo(groups[b]!, data, dims, centroids, a)]);
          from = 0; to = rows.groupStart[1]!;
        }
        for (let t = 0; t < queries.length; t += 4) {
          for (let l = 0; l < 4; l++) {
            const q = queries[Math.min(t + l, queries.length - 1)]!;
            slots[l] = slotOf[q]!;
            sink.from[l] = t + l < queries.length ? q : -1;
          }
          rows.scan(layout, slots, sink, from, to);
        }
        kernels.restore(mark);
      }
      bestW[root] = sink.w; bestA[root] = sink.a; bestB[root] = sink.b;
    }
    let added = 0;
    // Unions below change find(); the best edges were recorded under the roots of this round.
    const roots = groups.map((g) => sets.find(g[0]!));
    for (const root of roots) {
      if (bestA[root]! < 0 || bestW[root] === Infinity) continue;
      if (sets.union(bestA[root]!, bestB[root]!)) { pushEdge(edges, bestA[root]!, bestB[root]!, bestW[root]!); added++; }
    }
    if (added === 0) throw new Error("connectComponents: no edge between components (internal error)");
    onProgress?.(1 - Math.log(sets.components) / Math.log(Math.max(2, start)));
  }
}

/** Keeps the lightest mutual-reachability edge offered from query lanes whose point ids are in `from`. */
class LightestEdgeSink implements ScanSink {
  readonly from = [-1, -1, -1, -1];
  w = Infinity;
  a = -1;
  b = -1;
  constructor(private readonly core: Float64Array) {}
  reset(): void { this.w = Infinity; this.a = -1; this.b = -1; }
  bound(lane: number): number {
    if (this.from[lane]! < 0) return -1;
    // Any lighter edge is shorter than w; pairs at exactly w may still win the tie-break.
    return this.w === Infinity ? Infinity : Math.fround(this.w * this.w) * (1 + 1e-6);
  }
  offer(lane: number, d2: number, id: number): void {
    const p = this.from[lane]!;
    let w = Math.sqrt(d2);
    if (this.core[p]! > w) w = this.core[p]!;
    if (this.core[id]! > w) w = this.core[id]!;
    if (lighter(w, p, id, this.w, this.a, this.b)) { this.w = w; this.a = p; this.b = id; }
  }
}

/** The points of `group`, or its BOUNDARY_POINTS points nearest centroid `target` when it is larger. */
function nearestTo(group: number[], data: Float32Array, dims: number, centroids: Float32Array, target: number): number[] {
  if (group.length <= BOUNDARY_POINTS) return group;
  const dist = new Float64Array(group.length);
  const c = target * dims;
  for (let t = 0; t < group.length; t++) {
    const o = group[t]! * dims;
    let s = 0;
    for (let k = 0; k < dims; k++) { const x = data[o + k]! - centroids[c + k]!; s += x * x; }
    dist[t] = s;
  }
  const cut = dist.slice().sort()[BOUNDARY_POINTS - 1]!; // native numeric sort; ties at the cut keep group order
  const out: number[] = [];
  for (let t = 0; t < group.length && out.length < BOUNDARY_POINTS; t++) if (dist[t]! <= cut) out.push(group[t]!);
  return out;
}

function componentMembers(sets: UnionFind, n: number): Map<number, number[]> {
  const members = new Map<number, number[]>();
  for (let i = 0; i < n; i++) {
    const r = sets.find(i);
    let list = members.get(r);
    if (!list) members.set(r, (list = []));
    list.push(i);
  }
  return members;
}
