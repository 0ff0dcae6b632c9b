// An HNSW graph (USearch) in which ids whose vectors are identical share one node. Identical vectors in one graph
// (the same photo in many folders, or near-copies an i8 index stores alike) fill each other's neighbour lists until
// the rest of the graph cannot be reached from them: with 5000 photos and 200 copies of one, 144 photos were not
// found by their own vector (usearch 2.25, any dtype). So the first of a set of identical vectors becomes a node and
// the later ones are recorded as members of its group. Used by the images' vectors and the faces' index alike.
import type { Index } from "usearch";

/** Cosine distance at or under which two vectors are the same: one i8 step in one dimension is ~3e-5. */
export const TWIN_DISTANCE = 1e-6;

export interface GraphMatch {
  id: number;
  /** Cosine distance. */
  distance: number;
}

/** Which live ids share which node. */
export class TwinIds {
  /** Node key -> the live ids sharing its vector, for nodes that are not just their own id. */
  private readonly groups = new Map<number, number[]>();
  /** Every id listed in `groups` -> its node key. */
  private readonly nodeOf = new Map<number, number>();

  /** Live ids beyond one per node: what the graph's size misses. */
  get extra(): number {
    let n = 0;
    for (const members of this.groups.values()) n += members.length - 1;
    return n;
  }

  get isEmpty(): boolean {
    return this.groups.size === 0;
  }

  /** Whether `id` is live; `isNode` says whether the graph has a node keyed by it. */
  has(id: number, isNode: boolean): boolean {
    if (this.nodeOf.has(id)) return true;
    return isNode && !this.groups.has(id);
  }

  /** The live ids a search hit on `node` stands for, in the order they were added. */
  idsOf(node: number): readonly number[] {
    return this.groups.get(node) ?? [node];
  }

  /** Records `id` as sharing `node`'s vector. */
  join(id: number, node: number): void {
    const members = this.groups.get(node) ?? [node];
    members.push(id);
    this.groups.set(node, members);
    for (const m of members) this.nodeOf.set(m, node);
  }

  /**
   * Forgets live `id`; returns the node key the graph must drop (its last id left), or null when the node stays.
   * A node whose own id leaves keeps serving its other members under that key: ids are never reused.
   */
  leave(id: number): number | null {
    const node = this.nodeOf.get(id);
    if (node === undefined) return id;
    this.nodeOf.delete(id);
    const members = this.groups.get(node)!.filter((m) => m !== id);
    if (members.length === 0) {
      this.groups.delete(node);
      return node;
    }
    if (members.length === 1 && members[0] === node) {
      this.groups.delete(node);
      this.nodeOf.delete(node);
    } else this.groups.set(node, members);
    return null;
  }

  toJSON(): number[][] {
    return [...this.groups].map(([node, members]) => [node, ...members]);
  }

  static fromJSON(rows: unknown): TwinIds {
    const twins = new TwinIds();
    if (!Array.isArray(rows)) throw new Error("twin ids: not a list of groups");
    for (const row of rows) {
      if (!Array.isArray(row) || row.length < 2 || !row.every((x) => Number.isSafeInteger(x) && x > 0)) {
        throw new Error("twin ids: a group is not a node key and its member ids");
      }
      const [node, ...members] = row as number[];
      twins.groups.set(node!, members);
      for (const m of members) twins.nodeOf.set(m, node!);
    }
    return twins;
  }
}

export class TwinGraph {
  constructor(
    readonly index: Index,
    readonly dims: number,
    readonly twins = new TwinIds(),
  ) {}

  /** Ids with a vector. */
  get size(): number {
    return this.index.size() + this.twins.extra;
  }

  contains(ids: number[]): boolean[] {
    if (ids.length === 0) return [];
    const isNode = this.index.contains(toKeys(ids)) as boolean[];
    return ids.map((id, i) => this.twins.has(id, isNode[i]!));
  }

  /**
   * `vectors` holds one row of `dims` floats per id; the ids must not be live. An id that left a node its twins
   * still use cannot come back with another vector (ids are never reused, so this is a caller's bug).
   */
  add(ids: number[], vectors: Float32Array): void {
    const keys = toKeys(ids);
    const held = (this.index.contains(keys) as boolean[]).findIndex((isNode, i) => isNode || this.twins.has(ids[i]!, false));
    if (held >= 0) throw new Error(`id ${ids[held]} is already in the graph`);
    for (let i = 0; i < ids.length; i++) {
      const vector = vectors.subarray(i * this.dims, (i + 1) * this.dims);
      const twin = this.index.size() > 0 ? this.index.search(vector, 1, 1) : null;
      if (twin && twin.keys.length > 0 && twin.distances[0]! <= TWIN_DISTANCE) {
        this.twins.join(ids[i]!, Number(twin.keys[0]));
        continue;
      }
      // One thread: with usearch 2.25's JS binding, concurrent inserts sometimes leave a node that no search
      // reaches (5-7 of 20 builds of 40 real embeddings lost one; never single-threaded). store.test.ts checks it.
      this.index.add(keys.subarray(i, i + 1), vector, 1);
    }
  }

  /** Ids without a vector are ignored. */
  remove(ids: number[]): void {
    const present = this.contains(ids);
    const nodes = ids.filter((_, i) => present[i]).flatMap((id) => this.twins.leave(id) ?? []);
    if (nodes.length > 0) this.index.remove(toKeys(nodes));
  }

  /** The `k` nearest ids to each of the `n` queries (row-major), best first; a node's twins share its distance. */
  search(queries: Float32Array, n: number, k: number, threads: number): GraphMatch[][] {
    if (n === 0) return [];
    if (k <= 0 || this.index.size() === 0) return Array.from({ length: n }, () => []);
    const kk = Math.min(k, this.index.size());
    const result = this.index.search(queries, kk, threads) as { keys: BigUint64Array; distances: Float32Array; counts?: BigUint64Array };
    const counts = result.counts ?? [BigInt(result.keys.length)];
    return Array.from({ length: n }, (_, q) => {
      const out: GraphMatch[] = [];
      for (let j = 0; j < Number(counts[q]) && out.length < k; j++) {
        const distance = result.distances[q * kk + j]!;
        for (const id of this.twins.idsOf(Number(result.keys[q * kk + j]))) out.push({ id, distance });
      }
      return out.slice(0, k);
    });
  }
}

export function toKeys(ids: number[]): BigUint64Array {
  const keys = new BigUint64Array(ids.length);
  for (let i = 0; i < ids.length; i++) keys[i] = BigInt(ids[i]!);
  return keys;
}
