// vectors.usearch: the HNSW index over image embeddings. Derived from the catalog, so it can always be rebuilt.
import { createHash } from "node:crypto";
import { closeSync, openSync, readFileSync, readSync, rmSync, statSync } from "node:fs";
import type { Index } from "usearch";
import { loadUSearch } from "../native.ts";
import { dirname, join } from "node:path";
import { commitFile, commitFileWith } from "./atomic-file.ts";
import type { VectorOptions } from "./index-manifest.ts";
import { TwinGraph, TwinIds } from "./twin-graph.ts";

export const VECTORS_FILE = "vectors.usearch";
/** Beside the vectors file: the ids that share a node with an identical vector (twin-ids.ts). */
export const TWINS_FILE = "vectors.twins.json";

export interface VectorMatch {
  id: number;
  /** Cosine similarity, 1 - USearch's cosine distance. */
  score: number;
}

export interface CommittedVectors {
  sha256: string;
  bytes: number;
  /** Ids with a vector (more than the graph's nodes when some share one). */
  count: number;
  /** The twins file committed with it; null when no ids share a node. */
  twins: { sha256: string; bytes: number } | null;
}

export class VectorIndex {
  private constructor(
    private graph: TwinGraph,
    /** A memory-mapped view is immutable; the first write swaps it for an in-memory copy. */
    private viewedFrom: string | null,
    private readonly options: VectorOptions,
  ) {}

  static create(dims: number, options: VectorOptions): VectorIndex {
    return new VectorIndex(new TwinGraph(newUSearchIndex(dims, options), dims), null, options);
  }

  /**
   * `mapped` memory-maps the file (fast start, read-only until the first write); otherwise it is read into memory.
   * `twinsPath` is the twins file committed with it, if any.
   */
  static open(path: string, dims: number, options: VectorOptions, mapped: boolean, twinsPath: string | null): VectorIndex {
    const twins = twinsPath === null ? new TwinIds() : TwinIds.fromJSON(JSON.parse(readFileSync(twinsPath, "utf8")));
    const index = newUSearchIndex(dims, options);
    if (mapped) index.view(path);
    else index.load(path);
    if (index.dimensions() !== dims) throw new Error(`${path} holds ${index.dimensions()}-d vectors, expected ${dims}`);
    return new VectorIndex(new TwinGraph(index, dims, twins), mapped ? path : null, options);
  }

  /** Whether this is still the mapped view of `path`, as opened: no vector was added or removed since. */
  isViewOf(path: string): boolean {
    return this.viewedFrom === path;
  }

  /** Ids with a vector. */
  get size(): number {
    return this.graph.size;
  }

  contains(ids: number[]): boolean[] {
    return this.graph.contains(ids);
  }

  /** `vectors` holds one row of `dims` floats per id. Existing ids are replaced. */
  add(ids: number[], vectors: Float32Array): void {
    if (ids.length === 0) return;
    if (vectors.length !== ids.length * this.graph.dims) {
      throw new Error(`expected ${ids.length} vectors of ${this.graph.dims} floats, got ${vectors.length} floats`);
    }
    this.remove(ids);
    this.makeWritable();
    this.graph.add(ids, vectors);
  }

  /** Ids without a vector are ignored. */
  remove(ids: number[]): void {
    if (!this.contains(ids).includes(true)) return;
    this.makeWritable();
    this.graph.remove(ids);
  }

  search(query: Float32Array, k: number): VectorMatch[] {
    return this.searchMany(query, 1, k)[0]!;
  }

  /** The `k` nearest to each of the `n` queries (row-major), searched on all cores at once. */
  searchMany(queries: Float32Array, n: number, k: number): VectorMatch[][] {
    return this.graph.search(queries, n, k, 0).map((matches) => matches.map((m) => ({ id: m.id, score: 1 - m.distance })));
  }

  /**
   * Saves to `path` and the twins beside it (TWINS_FILE), each via commitFile, and returns what the manifest
   * records about them: the manifest, written after, is what makes the pair current.
   */
  commit(path: string): CommittedVectors {
    commitFileWith(path, (tmp) => this.graph.index.save(tmp));
    const { sha256, bytes } = fileDigest(path);
    const twinsPath = join(dirname(path), TWINS_FILE);
    let twins: CommittedVectors["twins"] = null;
    if (this.graph.twins.isEmpty) rmSync(twinsPath, { force: true });
    else {
      commitFile(twinsPath, JSON.stringify(this.graph.twins));
      twins = fileDigest(twinsPath);
    }
    return { sha256, bytes, count: this.size, twins };
  }

  private makeWritable(): void {
    if (this.viewedFrom === null) return;
    const loaded = newUSearchIndex(this.graph.dims, this.options);
    loaded.load(this.viewedFrom);
    this.graph = new TwinGraph(loaded, this.graph.dims, this.graph.twins);
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
