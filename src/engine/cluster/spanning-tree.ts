// Minimum spanning trees of the mutual-reachability graph, mrd(a, b) = max(core(a), core(b), |a − b|).
import type { KnnGraph } from "./knn.ts";
import { squaredDistancesFromRow, squaredNorms } from "./distance-kernels.ts";
import { UnionFind } from "./union-find.ts";

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
 * Brute-force Borůvka would repeat that pass every round, so Prim is the cheaper exact choice here.
 * Points still outside the tree are kept packed at the front of a private copy, so each step scans only them.
 */
export function exactMutualReachabilityMst(
  data: Float32Array, n: number, dims: number, core: Float64Array, onProgress?: (fraction: number) => void,
): SpanningEdges {
  const edges = emptyEdges(n);
  if (n < 2) return edges;
  const rows = data.slice(0, n * dims);
  const norms = squaredNorms(rows, n, dims);
  const id = new Int32Array(n);
  for (let i = 0; i < n; i++) id[i] = i;
  const best = new Float64Array(n).fill(Infinity);
  const bestFrom = new Int32Array(n).fill(-1);
  const dist = new Float64Array(n);
  let remaining = n;
  let current = 0; // slot of the point joining the tree
  while (remaining > 1) {
    const last = remaining - 1;
    moveSlot(rows, norms, id, best, bestFrom, dims, current, last);
    const joined = id[last]!;
    remaining = last;
    const coreJoined = core[joined]!;
    squaredDistancesFromRow(rows, norms, remaining, dims, last, dist);
    let argmin = 0, min = Infinity;
    for (let j = 0; j < remaining; j++) {
      const d2 = dist[j]!;
      let m = d2 > 0 ? Math.sqrt(d2) : 0;
      const cj = core[id[j]!]!;
      if (cj > m) m = cj;
      if (coreJoined > m) m = coreJoined;
      if (m < best[j]!) {
        best[j] = m;
        bestFrom[j] = joined;
      }
      if (best[j]! < min) {
        min = best[j]!;
        argmin = j;
      }
    }
    pushEdge(edges, bestFrom[argmin]!, id[argmin]!, min);
    current = argmin;
    if (onProgress && (remaining & 1023) === 0) onProgress(1 - (remaining * remaining) / (n * n));
  }
  return edges;
}

function moveSlot(
  rows: Float32Array, norms: Float64Array, id: Int32Array, best: Float64Array, bestFrom: Int32Array,
  dims: number, a: number, b: number,
): void {
  if (a === b) return;
  const oa = a * dims, ob = b * dims;
  for (let k = 0; k < dims; k++) {
    const t = rows[oa + k]!;
    rows[oa + k] = rows[ob + k]!;
    rows[ob + k] = t;
  }
  let t = norms[a]!; norms[a] = norms[b]!; norms[b] = t;
  t = best[a]!; best[a] = best[b]!; best[b] = t;
  let u = id[a]!; id[a] = id[b]!; id[b] = u;
  u = bestFrom[a]!; bestFrom[a] = bestFrom[b]!; bestFrom[b] = u;
}

/** Orders edges by (weight, smaller id, larger id) so Borůvka never closes a cycle on ties. */
function lighter(w: number, a: number, b: number, bw: number, ba: number, bb: number): boolean {
  if (w !== bw) return w < bw;
  const lo = a < b ? a : b, blo = ba < bb ? ba : bb;
  if (lo !== blo) return lo < blo;
  return (a < b ? b : a) < (ba < bb ? bb : ba);
}

/**
 * Borůvka restricted to the kNN graph: every round, each component takes its cheapest kNN edge that leaves it.
 * The result is the exact minimum spanning forest of the kNN subgraph; its components are joined afterwards.
 */
export function knnMutualReachabilityForest(
  graph: KnnGraph, n: number, core: Float64Array, edges: SpanningEdges, sets: UnionFind,
): void {
  const { k, indices, distances } = graph;
  const bestW = new Float64Array(n), bestA = new Int32Array(n), bestB = new Int32Array(n);
  for (;;) {
    bestW.fill(Infinity);
    bestA.fill(-1);
    for (let a = 0; a < n; a++) {
      const ra = sets.find(a);
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
      if (bestA[c]! < 0) continue;
      if (sets.union(bestA[c]!, bestB[c]!)) {
        pushEdge(edges, bestA[c]!, bestB[c]!, bestW[c]!);
        added++;
      }
    }
    if (added === 0) return;
  }
}

/** Finds up to `k` neighbours of each listed point; the caller's HNSW index or a brute-force scan. */
export type NeighbourSearch = (points: Int32Array, k: number) => KnnGraph;

const PROBES_PER_COMPONENT = 64;

/**
 * Joins the components left by the kNN forest. Each component probes with up to 64 of its points (those with the
 * widest kNN radius, i.e. nearest its boundary), asking for neighbours with a k that doubles whenever every probe's
 * candidates lie inside the component; at k = N the search is exhaustive, so the loop always terminates.
 * Approximate: the cheapest edge leaving a component is the cheapest among its probes' candidates.
 */
export function connectComponents(
  graph: KnnGraph, n: number, core: Float64Array, edges: SpanningEdges, sets: UnionFind, search: NeighbourSearch,
): void {
  if (sets.components <= 1) return;
  const radius = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let j = graph.k - 1; j >= 0; j--) {
      const d = graph.distances[i * graph.k + j]!;
      if (d !== Infinity) { r = d; break; }
    }
    radius[i] = r;
  }
  const probeK = new Int32Array(n).fill(graph.k);
  const lists = new Map<number, { ids: Int32Array; dists: Float32Array }>();
  const bestW = new Float64Array(n), bestA = new Int32Array(n), bestB = new Int32Array(n);
  while (sets.components > 1) {
    const members = componentMembers(sets, n);
    const toQuery: number[] = [];
    const queryK = new Map<number, number>();
    for (const [root, pts] of members) {
      const probes = pts.length <= PROBES_PER_COMPONENT ? pts
        : pts.sort((a, b) => radius[b]! - radius[a]! || a - b).slice(0, PROBES_PER_COMPONENT);
      const hasOutside = probes.some((p) => {
        const list = lists.get(p);
        return list !== undefined && list.ids.some((q) => sets.find(q) !== root);
      });
      if (hasOutside) continue;
      const k = Math.min(n, Math.max(2 * probeK[probes[0]!]!, Math.min(pts.length + graph.k, 4 * probeK[probes[0]!]!)));
      for (const p of probes) { probeK[p] = k; toQuery.push(p); }
      queryK.set(root, k);
    }
    // One search per distinct k keeps the batch large enough for the native threads.
    const byK = new Map<number, number[]>();
    for (const p of toQuery) {
      const k = probeK[p]!;
      let group = byK.get(k);
      if (!group) byK.set(k, (group = []));
      group.push(p);
    }
    for (const [k, pts] of byK) {
      const found = search(Int32Array.from(pts), k);
      for (let i = 0; i < pts.length; i++) {
        lists.set(pts[i]!, {
          ids: found.indices.subarray(i * found.k, (i + 1) * found.k),
          dists: found.distances.subarray(i * found.k, (i + 1) * found.k),
        });
      }
    }
    bestW.fill(Infinity);
    bestA.fill(-1);
    for (const [p, list] of lists) {
      const rp = sets.find(p), cp = core[p]!;
      for (let r = 0; r < list.ids.length; r++) {
        const q = list.ids[r]!, d = list.dists[r]!;
        if (d >= bestW[rp]!) break;
        if (sets.find(q) === rp) continue;
        let w = d;
        if (cp > w) w = cp;
        if (core[q]! > w) w = core[q]!;
        if (lighter(w, p, q, bestW[rp]!, bestA[rp]!, bestB[rp]!)) {
          bestW[rp] = w; bestA[rp] = p; bestB[rp] = q;
        }
      }
    }
    for (let c = 0; c < n; c++) {
      if (bestA[c]! < 0) continue;
      if (sets.union(bestA[c]!, bestB[c]!)) pushEdge(edges, bestA[c]!, bestB[c]!, bestW[c]!);
    }
  }
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
