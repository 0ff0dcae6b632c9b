// An index directory: catalog.duckdb (truth) + vectors.usearch (derived) + manifest.json (+ jobs.jsonl).
// Each batch commits to DuckDB in one transaction; vectors are saved at checkpoints. After a crash the vectors file
// may be behind the catalog: open() adds the missing rows, or rebuilds it when rows were also removed.
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type { PreprocessSpec, TokenizerSpec } from "../types.ts";
import { Catalog, type CatalogFilters, type ImageRecord, type KnownFile, type NewImage } from "./catalog.ts";
import { readManifest, writeManifest, type IndexManifest, type VectorDType, type VectorSettings } from "./index-manifest.ts";
import { VectorIndex, vectorFileMatches } from "./vectors.ts";
import { storeVersions } from "./versions.ts";

export type { ImageRecord, KnownFile, NewImage } from "./catalog.ts";
export type { IndexManifest } from "./index-manifest.ts";

export const CATALOG = "catalog.duckdb";
export const VECTORS = "vectors.usearch";

export interface ModelIdentity {
  name: string;
  dims: number;
  preprocess: PreprocessSpec;
  tokenizer?: TokenizerSpec;
}

export interface OpenOptions {
  /** Create the index with this model if there is none; refuse to open one built with another model. */
  model?: ModelIdentity;
  vectors?: { dtype?: VectorDType; connectivity?: number; expansionAdd?: number; expansionSearch?: number };
  readOnly?: boolean;
}

export interface SearchFilters extends CatalogFilters {
  offset?: number;
  excludeIds?: number[];
}

export interface SearchHit {
  id: number;
  path: string;
  score: number;
  size: number;
  width: number | null;
  height: number | null;
  takenAt: string | null;
  cameraMake: string | null;
  cameraModel: string | null;
}

export interface IndexStats {
  indexed: number;
  failed: number;
  total: number;
  vectors: number;
  dims: number;
  model: string;
  dtype: VectorDType;
  diskBytes: number;
}

const DEFAULT_VECTORS: VectorSettings = {
  metric: "cos",
  dtype: "f32",
  connectivity: 16,
  expansionAdd: 128,
  expansionSearch: 64,
};

export class IndexStore {
  /** True when open() had to rebuild or catch up the vectors file from the catalog. */
  rebuilt = false;

  private constructor(
    readonly dir: string,
    public manifest: IndexManifest,
    private readonly catalog: Catalog,
    private vectors: VectorIndex,
    readonly readOnly: boolean,
  ) {}

  get dims(): number {
    return this.manifest.model.dims;
  }

  static async open(dir: string, opts: OpenOptions = {}): Promise<IndexStore> {
    let manifest = readManifest(dir);
    const readOnly = opts.readOnly === true;
    if (!manifest) {
      if (!opts.model || readOnly) throw new Error(`no index at ${dir}; run imgd index first`);
      mkdirSync(dir, { recursive: true });
      const now = new Date().toISOString();
      manifest = {
        format: 1,
        model: opts.model,
        vectors: { ...DEFAULT_VECTORS, ...definedOnly(opts.vectors), count: 0, maxId: 0, bytes: 0, sha256: null },
        versions: storeVersions(),
        createdAt: now,
        updatedAt: now,
      };
    } else if (opts.model && (opts.model.name !== manifest.model.name || opts.model.dims !== manifest.model.dims)) {
      throw new Error(
        `index ${dir} was built with model ${manifest.model.name} (${manifest.model.dims}-d); ` +
          `you asked for ${opts.model.name} (${opts.model.dims}-d). Use another --index, or the same model.`,
      );
    }

    const catalog = await Catalog.open(join(dir, CATALOG), readOnly && existsSync(join(dir, CATALOG)));
    const vectorsPath = join(dir, VECTORS);
    const counts = await catalog.counts();
    const m = manifest.vectors;
    let vectors: VectorIndex | null = null;
    let rebuilt = false;
    if (m.count > 0 && vectorFileMatches(vectorsPath, m.bytes)) {
      try {
        vectors = VectorIndex.open(vectorsPath, manifest.model.dims, m, readOnly);
        if (vectors.size !== m.count) vectors = null;
      } catch {
        vectors = null;
      }
    }
    // Behind by appended rows only: a writer can catch up in place. Anything else: rebuild from the catalog.
    const behindOnlyByAppends = vectors !== null && counts.indexed >= vectors.size && counts.maxId > m.maxId;
    if (vectors && vectors.size !== counts.indexed) {
      if (!readOnly && behindOnlyByAppends) {
        await appendFromCatalog(vectors, catalog, m.maxId, manifest.model.dims);
        rebuilt = true;
      }
      if (vectors.size !== counts.indexed) vectors = null;
    }
    if (!vectors) {
      vectors = VectorIndex.create(manifest.model.dims, m);
      await appendFromCatalog(vectors, catalog, 0, manifest.model.dims);
      rebuilt = counts.indexed > 0 || m.count > 0;
    }

    const store = new IndexStore(dir, manifest, catalog, vectors, readOnly);
    store.rebuilt = rebuilt;
    if (!readOnly && (rebuilt || !existsSync(join(dir, "manifest.json")))) await store.checkpoint();
    return store;
  }

  knownFiles(): Promise<Map<string, KnownFile>> {
    return this.catalog.knownFiles();
  }

  /** `vectors` holds one row per 'indexed' entry of `rows`, in order; failed rows carry none. */
  async addBatch(rows: NewImage[], vectors: Float32Array): Promise<number[]> {
    this.assertWritable();
    const dims = this.dims;
    const indexedCount = rows.filter((r) => r.status === "indexed").length;
    if (vectors.length !== indexedCount * dims) {
      throw new Error(`addBatch: ${indexedCount} indexed rows need ${indexedCount * dims} floats, got ${vectors.length}`);
    }
    let v = 0;
    const blobs = rows.map((r) => {
      if (r.status !== "indexed") return null;
      const row = vectors.slice(v * dims, (v + 1) * dims);
      v++;
      return new Uint8Array(row.buffer);
    });
    const { ids, replaced } = await this.catalog.insert(rows, blobs);
    this.vectors.remove(replaced);
    const indexedIds = ids.filter((_, i) => rows[i]!.status === "indexed");
    this.vectors.add(indexedIds, vectors);
    return ids;
  }

  async movePaths(moves: { id: number; path: string; size: number; mtimeMs: number }[]): Promise<void> {
    this.assertWritable();
    await this.catalog.updatePaths(moves);
  }

  async removeIds(ids: number[]): Promise<void> {
    this.assertWritable();
    await this.catalog.remove(ids);
    this.vectors.remove(ids);
  }

  /** Makes the vectors file and manifest match the catalog on disk. */
  async checkpoint(): Promise<void> {
    this.assertWritable();
    await this.catalog.checkpoint();
    const counts = await this.catalog.counts();
    const saved = await this.vectors.save(join(this.dir, VECTORS));
    this.manifest = {
      ...this.manifest,
      vectors: { ...this.manifest.vectors, count: this.vectors.size, maxId: counts.maxId, ...saved },
      versions: storeVersions(),
      updatedAt: new Date().toISOString(),
    };
    await writeManifest(this.dir, this.manifest);
  }

  async search(query: Float32Array, k: number, filters: SearchFilters = {}): Promise<SearchHit[]> {
    const offset = filters.offset ?? 0;
    const want = offset + k;
    const exclude = new Set(filters.excludeIds ?? []);
    const filtered = Boolean(filters.pathPrefix || filters.takenAfter || filters.takenBefore);
    // Filters are applied to candidates from the vector index; widen the candidate set until enough survive.
    let fetch = filtered ? Math.max(want * 4, 64) : want + exclude.size;
    for (;;) {
      const matches = this.vectors.search(query, fetch).filter((m) => !exclude.has(m.id));
      const records = await this.catalog.get(
        matches.map((m) => m.id),
        filters,
      );
      const hits = matches.flatMap((m) => {
        const r = records.get(m.id);
        return r ? [toHit(r, m.score)] : [];
      });
      if (hits.length >= want || fetch >= this.vectors.size) return hits.slice(offset, want);
      fetch = Math.min(this.vectors.size, fetch * 4);
    }
  }

  async getImage(id: number): Promise<ImageRecord | null> {
    const one = await this.catalog.get([id]);
    return one.get(id) ?? null;
  }

  async getEmbedding(id: number): Promise<Float32Array | null> {
    const blob = await this.catalog.embedding(id);
    return blob ? new Float32Array(blob.slice().buffer) : null;
  }

  failures(): Promise<{ path: string; reason: string; error: string }[]> {
    return this.catalog.failures();
  }

  async stats(): Promise<IndexStats> {
    const counts = await this.catalog.counts();
    const diskBytes = readdirSync(this.dir).reduce((n, f) => n + statSync(join(this.dir, f)).size, 0);
    return {
      indexed: counts.indexed,
      failed: counts.failed,
      total: counts.total,
      vectors: this.vectors.size,
      dims: this.dims,
      model: this.manifest.model.name,
      dtype: this.manifest.vectors.dtype,
      diskBytes,
    };
  }

  async close(): Promise<void> {
    this.catalog.close();
  }

  private assertWritable(): void {
    if (this.readOnly) throw new Error(`index ${this.dir} is open read-only`);
  }
}

async function appendFromCatalog(vectors: VectorIndex, catalog: Catalog, afterId: number, dims: number): Promise<void> {
  for await (const { ids, blobs } of catalog.embeddings(afterId)) {
    const matrix = new Float32Array(ids.length * dims);
    blobs.forEach((b, i) => matrix.set(new Float32Array(b.slice().buffer), i * dims));
    vectors.add(ids, matrix);
  }
}

function toHit(r: ImageRecord, score: number): SearchHit {
  return {
    id: r.id,
    path: r.path,
    score,
    size: r.size,
    width: r.width,
    height: r.height,
    takenAt: r.takenAt,
    cameraMake: r.cameraMake,
    cameraModel: r.cameraModel,
  };
}

function definedOnly<T extends object>(o: T | undefined): Partial<T> {
  return Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined)) as Partial<T>;
}
