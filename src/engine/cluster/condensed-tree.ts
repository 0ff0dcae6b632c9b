// From a spanning tree to flat clusters, following McInnes' hdbscan library (_hdbscan_tree.pyx) except where R's dbscan differs
// (the λ of points in subtrees below min cluster size, see condense), since labels must agree with R:
// dendrogram → condensed tree (min cluster size) → stability → EOM or leaf selection (with
// cluster_selection_epsilon) → labels and membership probabilities. allow_single_cluster is always false.
import type { SpanningEdges } from "./spanning-tree.ts";
import { UnionFind } from "./union-find.ts";

export type SelectionMethod = "eom" | "leaf";

/** Node n + i merges left[i] and right[i] at height[i]; ids < n are points (scipy linkage layout). */
export interface Dendrogram {
  left: Int32Array;
  right: Int32Array;
  height: Float64Array;
  size: Int32Array;
}

export function singleLinkage(edges: SpanningEdges, n: number): Dendrogram {
  const m = edges.count;
  const order = new Int32Array(m);
  for (let i = 0; i < m; i++) order[i] = i;
  const w = edges.weight, joining = edges.to;
  // Equal weights merge in order of the joining point's id, as R's dbscan orders its Prim edges.
  order.sort((a, b) => w[a]! - w[b]! || joining[a]! - joining[b]! || a - b);
  const left = new Int32Array(m), right = new Int32Array(m), height = new Float64Array(m), size = new Int32Array(m);
  const sets = new UnionFind(n);
  const node = new Int32Array(n);
  for (let i = 0; i < n; i++) node[i] = i;
  for (let i = 0; i < m; i++) {
    const e = order[i]!;
    const ra = sets.find(edges.from[e]!), rb = sets.find(edges.to[e]!);
    const na = node[ra]!, nb = node[rb]!;
    left[i] = na; right[i] = nb; height[i] = w[e]!;
    size[i] = (na < n ? 1 : size[na - n]!) + (nb < n ? 1 : size[nb - n]!);
    sets.union(ra, rb);
    node[sets.find(ra)] = n + i;
  }
  return { left, right, height, size };
}

/** Condensed tree: clusters 0..count-1 (0 is the root, parents before children); every point falls out once. */
export interface CondensedTree {
  count: number;
  clusterParent: Int32Array;
  /** λ = 1/distance at which the cluster splits off its parent (0 for the root). */
  birthLambda: Float64Array;
  clusterSize: Int32Array;
  /** Cluster each point falls out of, and the λ at which it does. */
  pointCluster: Int32Array;
  pointLambda: Float64Array;
}

const lambdaOf = (d: number): number => (d > 0 ? 1 / d : Infinity);

export function condense(tree: Dendrogram, n: number, minClusterSize: number): CondensedTree {
  const pointCluster = new Int32Array(n).fill(0);
  const pointLambda = new Float64Array(n);
  const parents: number[] = [-1], births: number[] = [0], sizes: number[] = [n];
  const m = tree.left.length;
  if (m === 0 || m !== n - 1) {
    // No complete hierarchy (n < 2): every point belongs to the root at λ = ∞ → noise after selection.
    pointLambda.fill(Infinity);
    return finish(1, parents, births, sizes, pointCluster, pointLambda);
  }
  const sizeOf = (id: number): number => (id < n ? 1 : tree.size[id - n]!);
  const nodeStack: number[] = [n + m - 1], labelStack: number[] = [0];
  const fallStack: number[] = [];
  // A point of a subtree smaller than minClusterSize stays in the cluster until it becomes a singleton: its λ is
  // that of the merge that has it as a direct child (R's dbscan computeStability; capped below at the cluster's
  // split λ afterwards). The Python hdbscan library instead drops the whole subtree at the λ where it detaches.
  const fallLambda: number[] = [];
  const dropSubtree = (root: number, cluster: number, lambda: number): void => {
    fallStack.push(root);
    fallLambda.push(lambda);
    while (fallStack.length) {
      const id = fallStack.pop()!, at = fallLambda.pop()!;
      if (id < n) {
        pointCluster[id] = cluster;
        pointLambda[id] = at;
      } else {
        const own = lambdaOf(tree.height[id - n]!);
        fallStack.push(tree.left[id - n]!, tree.right[id - n]!);
        fallLambda.push(own, own);
      }
    }
  };
  const pieces: number[] = [], expand: number[] = [];
  while (nodeStack.length) {
    const id = nodeStack.pop()!, label = labelStack.pop()!;
    if (id < n) continue; // unreachable: points never head a cluster (minClusterSize ≥ 2)
    const h = tree.height[id - n]!, lambda = lambdaOf(h);
    // Merges at exactly this height split simultaneously: collect the pieces below the whole tied group, so the
    // result does not depend on which of several equal-weight spanning trees was built.
    pieces.length = 0;
    expand.push(tree.left[id - n]!, tree.right[id - n]!);
    while (expand.length) {
      const c = expand.pop()!;
      if (c >= n && tree.height[c - n] === h) expand.push(tree.left[c - n]!, tree.right[c - n]!);
      else pieces.push(c);
    }
    let big = 0;
    for (const c of pieces) if (sizeOf(c) >= minClusterSize) big++;
    for (const c of pieces) {
      const size = sizeOf(c);
      if (size < minClusterSize) dropSubtree(c, label, lambda);
      else if (big === 1) { nodeStack.push(c); labelStack.push(label); }
      else {
        const child = parents.length;
        parents.push(label); births.push(lambda); sizes.push(size);
        nodeStack.push(c); labelStack.push(child);
      }
    }
  }
  // No point outlives its cluster: λ ≤ the λ at which the cluster splits into children.
  const splitLambda = new Float64Array(parents.length).fill(Infinity);
  for (let c = 1; c < parents.length; c++) splitLambda[parents[c]!] = births[c]!;
  for (let p = 0; p < n; p++) {
    const cap = splitLambda[pointCluster[p]!]!;
    if (pointLambda[p]! > cap) pointLambda[p] = cap;
  }
  return finish(parents.length, parents, births, sizes, pointCluster, pointLambda);
}

function finish(
  count: number, parents: number[], births: number[], sizes: number[], pointCluster: Int32Array, pointLambda: Float64Array,
): CondensedTree {
  return {
    count,
    clusterParent: Int32Array.from(parents),
    birthLambda: Float64Array.from(births),
    clusterSize: Int32Array.from(sizes),
    pointCluster,
    pointLambda,
  };
}

/** Σ (λ_p − λ_birth) over points, plus (λ_child_birth − λ_birth)·size over child clusters. */
export function stabilities(t: CondensedTree): Float64Array {
  const s = new Float64Array(t.count);
  for (let p = 0; p < t.pointCluster.length; p++) {
    const c = t.pointCluster[p]!;
    s[c]! += clampLambda(t.pointLambda[p]!) - t.birthLambda[c]!;
  }
  for (let c = 1; c < t.count; c++) {
    const parent = t.clusterParent[c]!;
    s[parent]! += (t.birthLambda[c]! - t.birthLambda[parent]!) * t.clusterSize[c]!;
  }
  return s;
}

// Duplicate points give λ = ∞; a large finite value keeps stabilities comparable instead of NaN.
const clampLambda = (l: number): number => (Number.isFinite(l) ? l : 1e300);

export function selectClusters(
  t: CondensedTree, method: SelectionMethod, epsilon: number,
): Uint8Array {
  const selected = new Uint8Array(t.count);
  const children: number[][] = Array.from({ length: t.count }, () => []);
  for (let c = 1; c < t.count; c++) children[t.clusterParent[c]!]!.push(c);
  if (t.count <= 1) return selected;
  let chosen: number[];
  if (method === "leaf") {
    chosen = [];
    for (let c = 1; c < t.count; c++) if (children[c]!.length === 0) chosen.push(c);
  } else {
    const stability = stabilities(t);
    const keep = new Uint8Array(t.count);
    // Children have larger ids than parents, so a reverse sweep sees every subtree before its root.
    for (let c = t.count - 1; c >= 1; c--) {
      let sub = 0;
      for (const child of children[c]!) sub += stability[child]!;
      if (children[c]!.length > 0 && sub > stability[c]!) stability[c] = sub;
      else keep[c] = 1;
    }
    chosen = [];
    const covered = new Uint8Array(t.count);
    for (let c = 1; c < t.count; c++) {
      const p = t.clusterParent[c]!;
      if (covered[p] || (p !== 0 && keep[p])) covered[c] = 1;
      else if (keep[c]) chosen.push(c);
    }
  }
  if (epsilon > 0) chosen = epsilonSearch(t, chosen, children, epsilon);
  for (const c of chosen) selected[c] = 1;
  return selected;
}

/** Clusters born below ε are replaced by their nearest ancestor born above ε (never the root). */
function epsilonSearch(t: CondensedTree, leaves: number[], children: number[][], epsilon: number): number[] {
  const result = new Set<number>();
  const processed = new Set<number>();
  for (const leaf of [...leaves].sort((a, b) => a - b)) {
    if (1 / t.birthLambda[leaf]! >= epsilon) {
      result.add(leaf);
      continue;
    }
    if (processed.has(leaf)) continue;
    let node = leaf;
    for (;;) {
      const parent = t.clusterParent[node]!;
      if (parent === 0) break;
      if (1 / t.birthLambda[parent]! > epsilon) { node = parent; break; }
      node = parent;
    }
    result.add(node);
    const stack = [...children[node]!];
    while (stack.length) {
      const c = stack.pop()!;
      processed.add(c);
      stack.push(...children[c]!);
    }
  }
  return [...result];
}

/**
 * Labels: a point belongs to the nearest selected cluster at or above the one it falls out of; otherwise −1.
 * Probabilities as the hdbscan library defines them: min(λ_p, λ_max) / λ_max, where λ_max is the largest λ among
 * the selected cluster's direct children in the condensed tree (1 when λ_max is 0 or λ_p is infinite).
 */
export function labelPoints(t: CondensedTree, selected: Uint8Array): { labels: Int32Array; probabilities: Float32Array } {
  const n = t.pointCluster.length;
  const clusterLabel = new Int32Array(t.count).fill(-1);
  const owner = new Int32Array(t.count).fill(-1);
  let next = 0;
  for (let c = 0; c < t.count; c++) {
    if (selected[c]) { clusterLabel[c] = next++; owner[c] = c; }
    else if (c > 0) { clusterLabel[c] = clusterLabel[t.clusterParent[c]!]!; owner[c] = owner[t.clusterParent[c]!]!; }
  }
  const maxLambda = new Float64Array(t.count);
  for (let p = 0; p < n; p++) {
    const c = t.pointCluster[p]!;
    if (t.pointLambda[p]! > maxLambda[c]!) maxLambda[c] = t.pointLambda[p]!;
  }
  for (let c = 1; c < t.count; c++) {
    const parent = t.clusterParent[c]!;
    if (t.birthLambda[c]! > maxLambda[parent]!) maxLambda[parent] = t.birthLambda[c]!;
  }
  const labels = new Int32Array(n), probabilities = new Float32Array(n);
  for (let p = 0; p < n; p++) {
    const c = t.pointCluster[p]!;
    labels[p] = clusterLabel[c]!;
    if (labels[p]! < 0) continue;
    const max = maxLambda[owner[c]!]!, lambda = t.pointLambda[p]!;
    probabilities[p] = max === 0 || !Number.isFinite(lambda) ? 1 : Math.min(lambda, max) / max;
  }
  return { labels, probabilities };
}
