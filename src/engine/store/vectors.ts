// vectors.usearch: the HNSW index over image embeddings. Derived from the catalog, so it can always be rebuilt.
import { createHash } from "node:crypto";
import { closeSync, openSync, readSync, statSync } from "node:fs";
import type { Index } from "usearch";
import { loadUSearch } from "../native.ts";
import { commitFileWith } from "./atomic-file.ts";
import type { VectorOptions } from "./index-manifest.ts";

export const VECTORS_FILE = "vectors.usearch";

export interface VectorMatch {
  id: number;
  /** Cosine similarity, 1 - USearch's cosine distance. */
  score: number;
}

export interface CommittedVectors {
  sha256: string;
  bytes: number;
  count: number;
}

export class VectorIndex {
  private constructor(
    private index: Index,
    /** A memory-mapped view is immutable; the first write swaps it for an in-memory copy. */
    private viewedFrom: string | null,
    private readonly dims: number,
    private readonly options: VectorOptions,
  ) {}

  static create(dims: number, options: VectorOptions): VectorIndex {
    return new VectorIndex(newUSearchIndex(dims, options), null, dims, options);
  }

  /** `mapped` memory-maps the file (fast start, read-only until the first write); otherwise it is read into memory. */
  static open(path: string, dims: number, options: VectorOptions, mapped: boolean): VectorIndex {
    const index = newUSearchIndex(dims, options);
    if (mapped) index.view(path);
    else index.load(path);
    if (index.dimensions() !== dims) throw new Error(`${path} holds ${index.dimensions()}-d vectors, expected ${dims}`);
    return new VectorIndex(index, mapped ? path : null, dims, options);
  }

  get size(): number {
    return this.index.size();
  }

  contains(ids: number[]): boolean[] {
    if (ids.length === 0) return [];
    return this.index.contains(toKeys(ids)) as boolean[];
  }

  /** `vectors` holds one row of `dims` floats per id. Existing ids are replaced. */
  add(ids: number[], vectors: Float32Array): void {
    if (ids.length === 0) return;
    if (vectors.length !== ids.length * this.dims) {
      throw new Error(`expected ${ids.length} vectors of ${this.dims} floats, got ${vectors.length} floats`);
    }
    this.remove(ids);
    this.makeWritable();
    // One thread: with usearch 2.25's JS binding, concurrent inserts sometimes leave a node that no search reaches
    // (5-7 of 20 builds of 40 real embeddings lost one; never single-threaded). test/engine/store.test.ts checks it.
    this.index.add(toKeys(ids), vectors, 1);
  }

  /** Ids without a vector are ignored. */
  remove(ids: number[]): void {
    const present = this.contains(ids);
    const keys = ids.filter((_, i) => present[i]);
    if (keys.length === 0) return;
    this.makeWritable();
    this.index.remove(toKeys(keys));
  }

  search(query: Float32Array, k: number): VectorMatch[] {
    if (k <= 0 || this.size === 0) return [];
    const { keys, distances } = this.index.search(query, k, 0);
    const out: VectorMatch[] = [];
    for (let i = 0; i < keys.length; i++) out.push({ id: Number(keys[i]), score: 1 - distances[i]! });
    return out;
  }

  /** Saves to `path` via commitFile and returns what the manifest records about it. */
  commit(path: string): CommittedVectors {
    commitFileWith(path, (tmp) => this.index.save(tmp));
    const { sha256, bytes } = fileDigest(path);
    return { sha256, bytes, count: this.size };
  }

  private makeWritable(): void {
    if (this.viewedFrom === null) return;
    const loaded = newUSearchIndex(this.dims, this.options);
    loaded.load(this.viewedFrom);
    this.index = loaded;
    this.viewedFrom = null;
  }
}


export function fileDigest(path: string): { sha256: string; bytes: number } {
  const hash = createHash("sha256");
  const buf = Buffer.allocUnsafe(1 << 22);
  const fd = openSync(path, "r");
  let bytes = 0;
  try {
    for (let n: number; (n = readSync(fd, buf, 0, buf.length, null)) > 0; bytes += n) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
  return { sha256: hash.digest("hex"), bytes };
}

export function fileSize(path: string): number | null {
  try {
    return statSync(path).size;
  } catch {
    return null;
  }
}

function newUSearchIndex(dims: number, o: VectorOptions): Index {
  const { Index } = loadUSearch();
  return new Index({
    dimensions: dims,
    metric: "cos" as never,
    quantization: o.dtype as never,
    connectivity: o.connectivity,
    expansion_add: o.expansionAdd,
    expansion_search: o.expansionSearch,
    multi: false,
  });
}

function toKeys(ids: number[]): BigUint64Array {
  const keys = new BigUint64Array(ids.length);
  for (let i = 0; i < ids.length; i++) keys[i] = BigInt(ids[i]!);
  return keys;
}
