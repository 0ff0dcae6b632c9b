// vectors.usearch: the HNSW index over the catalog's embeddings. Derived data: saved atomically at checkpoints,
// rebuilt from the catalog when it is missing, damaged or behind.
import type { Index } from "usearch";
import { existsSync, statSync } from "node:fs";
import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { loadUSearch } from "../native.ts";
import { commitFile } from "./atomic-file.ts";
import type { VectorSettings } from "./index-manifest.ts";

export interface VectorMatch {
  id: number;
  /** Cosine similarity, 1 - cosine distance. */
  score: number;
}

export class VectorIndex {
  private constructor(
    private readonly index: Index,
    readonly dims: number,
  ) {}

  static create(dims: number, s: VectorSettings): VectorIndex {
    const { Index } = loadUSearch();
    const index = new Index({
      dimensions: dims,
      metric: s.metric as never,
      quantization: s.dtype as never,
      connectivity: s.connectivity,
      expansion_add: s.expansionAdd,
      expansion_search: s.expansionSearch,
      multi: false,
    });
    return new VectorIndex(index, dims);
  }

  /** Memory-maps the file when only reading (fast start, shared page cache), loads it when it will change. */
  static open(path: string, dims: number, s: VectorSettings, readOnly: boolean): VectorIndex {
    const v = VectorIndex.create(dims, s);
    if (readOnly) v.index.view(path);
    else v.index.load(path);
    return v;
  }

  get size(): number {
    return this.index.size();
  }

  add(ids: number[], vectors: Float32Array): void {
    if (ids.length === 0) return;
    if (vectors.length !== ids.length * this.dims) {
      throw new Error(`vector batch has ${vectors.length} floats for ${ids.length} ids of ${this.dims} dims`);
    }
    this.index.add(BigUint64Array.from(ids, (id) => BigInt(id)), vectors);
  }

  remove(ids: number[]): void {
    for (const id of ids) {
      if (this.index.contains(BigInt(id))) this.index.remove(BigInt(id));
    }
  }

  search(query: Float32Array, k: number): VectorMatch[] {
    const n = Math.min(k, this.size);
    if (n === 0) return [];
    const m = this.index.search(query, n, 0);
    const out: VectorMatch[] = [];
    for (let i = 0; i < m.keys.length; i++) {
      // USearch pads missing results with max-key sentinels when fewer than k are found.
      if (!Number.isFinite(m.distances[i]!) || m.keys[i]! === 0xffffffffffffffffn) continue;
      out.push({ id: Number(m.keys[i]), score: 1 - m.distances[i]! });
    }
    return out;
  }

  async save(path: string): Promise<{ bytes: number; sha256: string }> {
    await commitFile(path, (temp) => this.index.save(temp));
    return { bytes: statSync(path).size, sha256: await sha256Of(path) };
  }
}

export function vectorFileMatches(path: string, bytes: number): boolean {
  return existsSync(path) && statSync(path).size === bytes;
}

function sha256Of(path: string): Promise<string> {
  return new Promise((done, fail) => {
    const hash = createHash("sha256");
    createReadStream(path)
      .on("data", (chunk) => hash.update(chunk))
      .on("error", fail)
      .on("end", () => done(hash.digest("hex")));
  });
}
