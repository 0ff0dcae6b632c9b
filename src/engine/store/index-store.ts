// An index directory: catalog.duckdb (truth, committed per batch), vectors.usearch (derived HNSW index,
// committed at checkpoints) and manifest.json (what it was built with, and which vectors file is current).
import { existsSync, mkdirSync, readdirSync, statSync } from "node:fs";
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import { join } from "node:path";
import { Catalog, CATALOG_FILE, type CatalogFilter, type FileMove, type ImageRecord, type KnownFile, type NewImage } from "./catalog.ts";
import type { HitRecord, RecordCache } from "./metadata-cache.ts";
import type { AnalysisStage } from "../analysis/stage.ts";
import {
  assertSameModel,
  newManifest,
  readManifest,
  writeManifest,
  type IndexManifest,
  type IndexModel,
  type StageModels,
  type VectorDType,
  type VectorOptions,
} from "./index-manifest.ts";
import { dot } from "../vector-math.ts";
import { EXACT_FILE, ExactRows } from "./exact-rows.ts";
import type { IdSet } from "./id-set.ts";
import { completeMergeBeside, restoreCompleteMerge } from "./merge-swap.ts";
import { storeVersions } from "./versions.ts";
import { fileDigest, fileSize, TWINS_FILE, VECTORS_FILE, VectorIndex, type VectorMatch } from "./vectors.ts";

export type { FileMove, ImageRecord, KnownFile, NewImage } from "./catalog.ts";
export type { IndexManifest, IndexModel, StageModels, VectorDType } from "./index-manifest.ts";

export interface IndexStoreInit {
  model: IndexModel;
  vectors?: Partial<VectorOptions>;
}

export interface OpenOptions extends Partial<IndexStoreInit> {
  readOnly?: boolean;
  /** Hash the vectors file against the manifest on open. Defaults to on for writers; size is always checked. */
  verifyChecksum?: boolean;
}

export interface SearchOptions extends CatalogFilter {
  offset?: number;
  excludeIds?: number[];
}

export interface SearchHit {
  id: number;
  path: string;
  /** Cosine similarity. */
  score: number;
  width: number | null;
  height: number | null;
  takenAt: string | null;
  cameraMake: string | null;
  cameraModel: string | null;
  size: number;
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

/** How the vectors file was brought in line with the catalog on open. */
export type VectorRecovery = "none" | "repaired" | "rebuilt";

/**
 * Up to this many filtered candidates are scored exactly (reading their embeddings from the catalog, ~1 ms per 100)
 * instead of oversampling the graph, which would need ever larger fetches to find a few rare matches.
 */
const EXACT_SEARCH_LIMIT = 2_000;

/** i8 search takes this many candidates per hit wanted (at least RESCORE_MIN) from the graph to score exactly. */
const RESCORE_FACTOR = 4;
const RESCORE_MIN = 40;

/**
 * int8 by default, scored against f16 rows read from disk: a quarter of f32's memory (51 vs 205 MB at 100K x 512),
 * with f16's recall and latency (bench/recall.ts). The rows move a CLIP cosine by ~1e-5.
 */
const DEFAULT_VECTORS: VectorOptions = { dtype: "i8", connectivity: 0, expansionAdd: 0, expansionSearch: 0 };

export class IndexStore {
  private dirty = false;
  private recordCache: RecordCache | null = null;

  private constructor(
    readonly dir: string,
    private currentManifest: IndexManifest,
    private readonly catalog: Catalog,
    private vectors: VectorIndex,
    /** f16 rows that i8 search scores its candidates against; null for f16 and f32 indexes. */
    private readonly exact: ExactRows | null,
    readonly readOnly: boolean,
    /** Why the vectors had to be recovered on open; `rebuilt` is true for any recovery. */
    readonly recovery: VectorRecovery,
  ) {}

  static async open(dir: string, opts: OpenOptions = {}): Promise<IndexStore> {
    const readOnly = opts.readOnly ?? false;
    let manifest = readManifest(dir);
    if (!manifest) {
      // A merge killed between its two renames left no index here, but the complete new one beside it: a reader opens
      // that one where it is; a writer puts it in place, as a new empty index here would have the next coordinator
      // delete it (it keeps an index it finds) and with it every row and person merged into it.
      if (readOnly) {
        const merged = completeMergeBeside(dir);
        if (merged) return IndexStore.open(merged, opts);
      } else if (restoreCompleteMerge(dir)) {
        manifest = readManifest(dir);
      }
    }
    if (!manifest) {
      if (!opts.model) throw new Error(`no index at ${dir}; run imgd index first`);
      if (readOnly) throw new Error(`no index at ${dir}; run imgd index first`);
      mkdirSync(dir, { recursive: true });
      manifest = newManifest(opts.model, { ...DEFAULT_VECTORS, ...definedOnly(opts.vectors ?? {}) });
    } else {
      if (opts.model) assertSameModel(dir, manifest, opts.model);
      const dtype = opts.vectors?.dtype;
      if (dtype && dtype !== manifest.vectors.dtype) {
        throw new Error(`index ${dir} holds ${manifest.vectors.dtype} vectors, not ${dtype}; ${dtype} vectors need a new index`);
      }
    }
    const dims = manifest.model.dims;
    const catalog = await Catalog.open(join(dir, CATALOG_FILE), dims, readOnly);
    try {
      const verify = opts.verifyChecksum ?? !readOnly;
      const { vectors, recovery } = await loadVectors(dir, manifest, catalog, readOnly, verify);
      const exact = manifest.vectors.dtype === "i8" ? await openExactRows(dir, dims, catalog, vectors.size, readOnly) : null;
      const store = new IndexStore(dir, manifest, catalog, vectors, exact, readOnly, recovery);
      // Persist a recovery (and a brand-new index) at once, so the next open is fast and consistent.
      if (!readOnly && (recovery !== "none" || manifest.vectors.sha256 === null)) {
        store.dirty = true;
        await store.checkpoint();
      }
      return store;
    } catch (error) {
      await catalog.close();
      throw error;
    }
  }

  get manifest(): IndexManifest {
    return this.currentManifest;
  }

  get dims(): number {
    return this.currentManifest.model.dims;
  }

  /** True when the vectors file was missing, stale or corrupt on open and was rebuilt or repaired from the catalog. */
  get rebuilt(): boolean {
    return this.recovery !== "none";
  }

  /** Search reads hit metadata from `cache` instead of the catalog; every write below tells it what changed. */
  useRecordCache(cache: RecordCache | null): void {
    this.recordCache = cache;
  }

  /** Those of `hashes` (imohashes) that an indexed image has: asked per ingest, not held for the whole catalog. */
  indexedHashes(hashes: string[]): Promise<Set<string>> {
    return this.catalog.indexedHashes(hashes);
  }

  /** The directories holding catalogued files: a server's default roots, without reading every row into memory. */
  folders(): Promise<string[]> {
    return this.catalog.folders();
  }

  knownFiles(paths?: string[]): Promise<Map<string, KnownFile>> {
    return this.catalog.knownFiles(paths);
  }

  /** `vectors` holds one embedding per 'indexed' row, in order. Returns the new id of every row. */
  async addBatch(
    rows: NewImage[],
    vectors: Float32Array,
    also?: (conn: DuckDBConnection, ids: number[]) => Promise<void>,
  ): Promise<number[]> {
    this.assertWritable();
    const { ids, replacedIds } = await this.catalog.addBatch(rows, vectors, also);
    await this.recordCache?.apply({ added: ids, removed: replacedIds });
    const embedded = ids.filter((_, i) => rows[i]!.status === "indexed");
    this.vectors.remove(replacedIds);
    this.vectors.add(embedded, vectors);
    this.exact?.remove(replacedIds);
    this.exact?.add(embedded, vectors);
    this.dirty = true;
    return ids;
  }

  /**
   * A moved or touched file keeps its id and vector. Moves may permute paths among themselves; `removeIds` are
   * rows deleted in the same transaction (those whose path a move takes).
   */
  async movePaths(moves: FileMove[], removeIds: number[] = []): Promise<void> {
    this.assertWritable();
    if (moves.length === 0 && removeIds.length === 0) return;
    await this.catalog.movePaths(moves, removeIds);
    await this.recordCache?.apply({ removed: removeIds, moved: moves });
    this.vectors.remove(removeIds);
    this.exact?.remove(removeIds);
    this.dirty = true;
  }

  /** Gives catalogued files without a ctime (written before it was kept, or from a shard) the one a scan saw. */
  async setCtimes(rows: { id: number; ctimeMs: number }[]): Promise<void> {
    this.assertWritable();
    await this.catalog.setCtimes(rows);
  }

  /**
   * Rows that hang off existing images (an analysis stage's), in one catalog transaction; `attach` makes another
   * catalog readable under that alias meanwhile.
   */
  async writeRows(work: (conn: DuckDBConnection) => Promise<void>, attach?: { path: string; as: string }): Promise<void> {
    this.assertWritable();
    await this.catalog.write(work, attach);
  }

  /** Another catalog, readable as `as` by read() and writeRows() until detach() (see Catalog.attach). */
  attach(path: string, as: string): Promise<void> {
    return this.catalog.attach(path, as);
  }

  detach(as: string): Promise<void> {
    return this.catalog.detach(as);
  }

  ensureTables(ddl: readonly string[]): Promise<void> {
    this.assertWritable();
    return this.catalog.ensureTables(ddl);
  }

  /**
   * Before a run's stages write anything: creates their tables and records the models they run with, committed at
   * once (a run stopped half way leaves images analysed by these models, which the next run should keep).
   */
  async prepareStages(stages: readonly Pick<AnalysisStage, "name" | "ddl" | "models" | "assertFitsIndex">[]): Promise<void> {
    // Every stage is checked before any is prepared: a refused run leaves the index as it was.
    for (const stage of stages) await stage.assertFitsIndex?.((sql, params) => this.read(sql, params), this.currentManifest.stages?.[stage.name]);
    for (const stage of stages) await this.ensureTables(stage.ddl);
    this.recordStageModels(Object.fromEntries(stages.map((s) => [s.name, { ...s.models }])));
  }

  /** Records what stages ran with (merged over what the index had for other stages) in the manifest, now. */
  recordStageModels(models: StageModels): void {
    this.assertWritable();
    const stages = { ...this.currentManifest.stages, ...models };
    if (JSON.stringify(stages) === JSON.stringify(this.currentManifest.stages ?? {})) return;
    // The current manifest names the committed vectors file, so rewriting it with only `stages` changed is safe.
    const manifest: IndexManifest = { ...this.currentManifest, stages };
    writeManifest(this.dir, manifest);
    this.currentManifest = manifest;
  }

  /**
   * The graph's `k` nearest to each of `n` queries (row-major) with the graph's own scores: within ~0.02 of the
   * cosine for an i8 index (then `approximate`), exact otherwise. `exactScores` scores the few that matter.
   */
  nearestMany(queries: Float32Array, n: number, k: number): { matches: VectorMatch[][]; approximate: boolean } {
    return { matches: this.vectors.searchMany(queries, n, k), approximate: this.exact !== null };
  }

  /** Cosine similarity of `query` with each of `ids` from their stored rows (NaN for an id without one). */
  exactScores(ids: number[], query: Float32Array): Float32Array {
    return this.exact ? this.exact.scores(ids, query) : new Float32Array(ids.length).fill(Number.NaN);
  }

  /**
   * Nearest neighbours by id and cosine similarity, without the catalog (duplicate detection). An i8 index scores
   * RESCORE_FACTOR times the candidates by their rows, where it has them: near-duplicate thresholds need fine scores.
   */
  nearest(query: Float32Array, k: number): VectorMatch[] {
    if (!this.exact) return this.vectors.search(query, k);
    const candidates = this.vectors.search(query, Math.max(RESCORE_MIN, k * RESCORE_FACTOR));
    const scores = this.exact.scores(candidates.map((m) => m.id), query);
    return candidates
      .map((m, i) => (Number.isNaN(scores[i]) ? m : { id: m.id, score: scores[i]! }))
      .sort((a, b) => b.score - a.score)
      .slice(0, k);
  }

  /** Changes whenever the catalog is written: what a report computed over the index can be cached by. */
  get writeCount(): number {
    return this.catalog.writeCount;
  }

  get vectorCount(): number {
    return this.vectors.size;
  }

  embeddedIds(): Promise<number[]> {
    return this.catalog.embeddedIds();
  }

  /** Every stored embedding, a page at a time, in id order. */
  embeddings(pageSize?: number): AsyncGenerator<{ ids: number[]; vectors: Float32Array }> {
    return this.catalog.embeddings(pageSize);
  }

  /** Reads from the catalog: stage tables (faces, objects, text) are queried by their own modules. */
  read(sql: string, params?: DuckDBValue[]): Promise<DuckDBValue[][]> {
    return this.catalog.read(sql, params);
  }

  /** A read too large to hold as rows, a chunk of columns at a time (see Catalog.readChunks). */
  readChunks(sql: string, onChunk: (columns: DuckDBValue[][]) => void): Promise<void> {
    return this.catalog.readChunks(sql, undefined, onChunk);
  }

  tables(): Promise<Set<string>> {
    return this.catalog.tables();
  }

  analysisRuns(): Promise<Map<number, Map<string, string>>> {
    return this.catalog.analysisRuns();
  }

  async removeIds(ids: number[]): Promise<void> {
    this.assertWritable();
    if (ids.length === 0) return;
    await this.catalog.removeIds(ids);
    await this.recordCache?.apply({ removed: ids });
    this.vectors.remove(ids);
    this.exact?.remove(ids);
    this.dirty = true;
  }

  /** Commits the vectors file, then the manifest that names it; the catalog is already committed per batch. */
  async checkpoint(): Promise<void> {
    if (this.readOnly || !this.dirty) return;
    const { version } = await this.catalog.state();
    this.exact?.commit();
    const path = join(this.dir, VECTORS_FILE);
    // No vector changed since the committed file was mapped (files were only touched or moved): it stays as it is,
    // and only the catalog version it reflects is recorded, instead of writing and hashing the whole graph again.
    const { sha256, bytes, count, twins } = this.currentManifest.vectors;
    const committed = this.vectors.isViewOf(path) && sha256 !== null ? { sha256, bytes, count, twins: twins ?? null } : this.vectors.commit(path);
    const manifest: IndexManifest = {
      ...this.currentManifest,
      vectors: { ...this.currentManifest.vectors, ...committed, catalogVersion: version },
      versions: storeVersions() as IndexManifest["versions"],
      updatedAt: new Date().toISOString(),
    };
    writeManifest(this.dir, manifest);
    this.currentManifest = manifest;
    this.dirty = false;
    await this.catalog.checkpoint();
  }

  async search(query: Float32Array, k: number, opts: SearchOptions = {}): Promise<SearchHit[]> {
    if (query.length !== this.dims) throw new Error(`query has ${query.length} dims; the index has ${this.dims}`);
    const offset = opts.offset ?? 0;
    const wanted = offset + k;
    if (k <= 0 || this.vectors.size === 0) return [];
    const exclude = new Set(opts.excludeIds ?? []);
    const allowed = opts.where?.length ? await this.catalog.idsWhere(opts.where) : null;
    if (allowed && allowed.size <= EXACT_SEARCH_LIMIT) {
      return this.searchAmong(allowed.ids().filter((id) => !exclude.has(id)), query, offset, wanted, opts);
    }
    // So too a path or date filter that selects few: oversampling the graph for 20 of 1000 photos in 1M would fetch
    // and score ever more candidates, up to the whole index (seconds a request).
    const passing = hasPlainFilter(opts) ? await (this.recordCache ?? this.catalog).idsPassing(opts, EXACT_SEARCH_LIMIT) : null;
    if (passing) {
      return this.searchAmong(passing.filter((id) => !exclude.has(id) && (allowed === null || allowed.has(id))), query, offset, wanted, opts);
    }
    if (this.currentManifest.vectors.dtype === "i8") return this.searchRescored(query, offset, wanted, exclude, allowed, opts);
    // USearch's JS binding has no filtered search: oversample, filter in the catalog, grow until enough or exhausted.
    for (let fetch = Math.min(this.vectors.size, wanted * 4 + exclude.size); ; fetch = Math.min(this.vectors.size, fetch * 4)) {
      const matches = this.vectors
        .search(query, fetch)
        .filter((m) => !exclude.has(m.id) && (allowed === null || allowed.has(m.id)));
      const hits = await this.bestHits(matches, wanted, opts);
      if (hits.length >= wanted || fetch >= this.vectors.size) return hits.slice(offset);
    }
  }

  /**
   * Search over i8 vectors: their distances are coarse (recall@20 0.915 against exact search on clustered 512-d
   * data), so the graph only proposes candidates, RESCORE_FACTOR times what is wanted, and their f16 rows in
   * vectors.f16 score them.
   */
  private async searchRescored(
    query: Float32Array,
    offset: number,
    wanted: number,
    exclude: Set<number>,
    allowed: IdSet | null,
    opts: SearchOptions,
  ): Promise<SearchHit[]> {
    const size = this.vectors.size;
    for (let fetch = Math.min(size, Math.max(RESCORE_MIN, wanted * RESCORE_FACTOR) + exclude.size); ; fetch = Math.min(size, fetch * 4)) {
      const ids = this.vectors
        .search(query, fetch)
        .map((m) => m.id)
        .filter((id) => !exclude.has(id) && (allowed === null || allowed.has(id)));
      const hits = await this.searchAmong(ids, query, offset, wanted, opts);
      if (hits.length >= wanted - offset || fetch >= size) return hits;
    }
  }

  /** Images that pass `opts` without a query vector (e.g. "every photo with a car"), by path; score is 0. */
  async browse(k: number, opts: SearchOptions = {}): Promise<SearchHit[]> {
    const offset = opts.offset ?? 0;
    const allowed = opts.where?.length ? await this.catalog.idsWhere(opts.where) : null;
    // Served from memory without a record per image (at 1M: 2.5 s a request, sorting every path, down to ms).
    if (this.recordCache) return this.recordCache.browse(k, offset, opts, allowed).map((r) => toHit(r, 0));
    const ids = allowed ? allowed.ids() : await this.catalog.embeddedIds();
    const records = await this.records(ids, opts);
    return records
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .slice(offset, offset + k)
      .map((r) => toHit(r, 0));
  }

  /** Exact scores over a few candidate ids (a selective filter): cheaper and surer than oversampling the graph. */
  private async searchAmong(
    ids: number[],
    query: Float32Array,
    offset: number,
    wanted: number,
    filter: CatalogFilter,
  ): Promise<SearchHit[]> {
    const scored = (await this.scoreAmong(ids, query)).sort((a, b) => b.score - a.score);
    return (await this.bestHits(scored, wanted, filter)).slice(offset);
  }

  /**
   * The first `wanted` of `ranked` (best first) that pass the plain filters, as hits. Records are read for those
   * `wanted` alone unless the filters drop some: the rest of an oversampled candidate list is rarely shown.
   */
  private async bestHits(ranked: VectorMatch[], wanted: number, filter: CatalogFilter): Promise<SearchHit[]> {
    let records = await this.records(ranked.slice(0, wanted).map((m) => m.id), filter);
    if (records.length < Math.min(wanted, ranked.length)) records = await this.records(ranked.map((m) => m.id), filter);
    const byId = new Map(records.map((r) => [r.id, r]));
    return ranked
      .filter((m) => byId.has(m.id))
      .slice(0, wanted)
      .map((m) => toHit(byId.get(m.id)!, m.score));
  }

  /** Cosine similarity of `query` with each of `ids` that has an embedding: from vectors.f16 where it has the row, else the catalog. */
  private async scoreAmong(ids: number[], query: Float32Array): Promise<VectorMatch[]> {
    const scores = this.exact?.scores(ids, query);
    const scored: VectorMatch[] = [];
    const rest: number[] = [];
    ids.forEach((id, i) => (scores && !Number.isNaN(scores[i]) ? scored.push({ id, score: scores[i]! }) : rest.push(id)));
    const { ids: found, vectors } = await this.catalog.embeddingsOf(rest);
    found.forEach((id, i) => scored.push({ id, score: dot(vectors.subarray(i * this.dims, (i + 1) * this.dims), query) }));
    return scored;
  }

  /** Hit records of `ids` passing the plain filters (from memory when serving); `where` is applied by the caller. */
  private async records(ids: number[], filter: CatalogFilter): Promise<HitRecord[]> {
    return (this.recordCache ?? this.catalog).indexedRecords(ids, { ...filter, where: undefined });
  }

  getImage(id: number): Promise<ImageRecord | null> {
    return this.catalog.getImage(id);
  }

  getEmbedding(id: number): Promise<Float32Array | null> {
    return this.catalog.getEmbedding(id);
  }

  failures(): Promise<{ path: string; reason: string; error: string }[]> {
    return this.catalog.failures();
  }

  async stats(): Promise<IndexStats> {
    const counts = await this.catalog.counts();
    return {
      indexed: counts.indexed,
      failed: counts.failed,
      total: counts.total,
      vectors: this.vectors.size,
      dims: this.dims,
      model: this.currentManifest.model.name,
      dtype: this.currentManifest.vectors.dtype,
      diskBytes: directoryBytes(this.dir),
    };
  }

  async close(): Promise<void> {
    await this.checkpoint();
    this.exact?.close();
    await this.catalog.close();
  }

  private assertWritable(): void {
    if (this.readOnly) throw new Error(`index ${this.dir} was opened read-only`);
  }
}

/**
 * Opens the committed vectors file if it is the one the manifest names, then reconciles it with the catalog:
 * a stale file is repaired by key difference (ids are never reused, so ids alone identify vectors); a missing,
 * truncated or corrupt one is rebuilt from the embeddings in the catalog.
 */
async function loadVectors(
  dir: string,
  manifest: IndexManifest,
  catalog: Catalog,
  readOnly: boolean,
  verify: boolean,
): Promise<{ vectors: VectorIndex; recovery: VectorRecovery }> {
  const path = join(dir, VECTORS_FILE);
  const m = manifest.vectors;
  const dims = manifest.model.dims;
  const state = await catalog.state();
  // Counting embeddings reads every blob into DuckDB's buffers (2 GB and ~2 s at 1M x 512), so only where needed.
  const embedded = async () => (await catalog.counts()).embedded;
  const twinsPath = m.twins ? join(dir, TWINS_FILE) : null;
  const committed = (file: string, want: { sha256: string; bytes: number }) =>
    fileSize(file) === want.bytes && (!verify || fileDigest(file).sha256 === want.sha256);
  const intact =
    m.sha256 !== null && committed(path, { sha256: m.sha256, bytes: m.bytes }) && (!m.twins || committed(twinsPath!, m.twins));
  // A graph from before twins holds each copy of a photo as a node of its own: one with copies is rebuilt once,
  // when writable (2 min at 100K on 2 busy cores, hence not for every old index).
  const beforeTwins = m.twins === undefined && !readOnly && (await catalog.hasRepeatedContent());
  let vectors: VectorIndex | null = null;
  if (intact && !beforeTwins) {
    try {
      // Mapped for a writer too: the first vector written loads it into memory (VectorIndex.makeWritable), so a run
      // that adds or removes none (a re-run over an unchanged library) never holds the graph, 600 MB at 1M x 512.
      vectors = VectorIndex.open(path, dims, m, true, twinsPath);
    } catch {
      vectors = null;
    }
  }
  if (vectors && vectors.size === m.count) {
    // Every write of embeddings bumps the catalog version in its transaction: at the version the file was committed
    // with, the catalog holds the file's m.count embeddings.
    if (m.catalogVersion === state.version) return { vectors, recovery: "none" };
    await repair(vectors, catalog, state.nextId);
    if (vectors.size === (await embedded())) return { vectors, recovery: "repaired" };
  }
  if (m.sha256 === null && (await embedded()) === 0) return { vectors: VectorIndex.create(dims, m), recovery: "none" };
  return { vectors: await rebuild(catalog, dims, m), recovery: "rebuilt" };
}

async function repair(vectors: VectorIndex, catalog: Catalog, nextId: number): Promise<void> {
  const embedded = await catalog.embeddedIds();
  const inCatalog = new Set(embedded);
  const notInCatalog: number[] = [];
  for (let id = 1; id < nextId; id++) if (!inCatalog.has(id)) notInCatalog.push(id);
  vectors.remove(notInCatalog);
  const found = vectors.contains(embedded);
  const present = new Set(embedded.filter((_, i) => found[i]));
  for await (const page of catalog.embeddings()) {
    const add = page.ids.map((id, i) => [id, i] as const).filter(([id]) => !present.has(id));
    if (add.length === 0) continue;
    const rows = new Float32Array(add.length * catalog.dims);
    add.forEach(([, i], j) => rows.set(page.vectors.subarray(i * catalog.dims, (i + 1) * catalog.dims), j * catalog.dims));
    vectors.add(add.map(([id]) => id), rows);
  }
}

/**
 * vectors.f16 as i8 search needs it. A writable open with fewer rows than vectors (an index from before the file,
 * or records a crash lost) adds the missing ones from the catalog. Rows still missing, as in a read-only open,
 * are scored from the catalog at search time, so counting is enough here: listing the embedded ids would scan
 * every embedding blob (~300 MB more peak memory at 100K).
 */
async function openExactRows(dir: string, dims: number, catalog: Catalog, vectors: number, readOnly: boolean): Promise<ExactRows> {
  const exact = ExactRows.open(join(dir, EXACT_FILE), dims, !readOnly, (await catalog.state()).nextId);
  try {
    if (!readOnly && exact.size < vectors) {
      for await (const page of catalog.embeddings()) exact.add(page.ids, page.vectors);
      exact.commit();
    }
    return exact;
  } catch (error) {
    exact.close();
    throw error;
  }
}

async function rebuild(catalog: Catalog, dims: number, options: VectorOptions): Promise<VectorIndex> {
  const vectors = VectorIndex.create(dims, options);
  for await (const page of catalog.embeddings()) vectors.add(page.ids, page.vectors);
  return vectors;
}

function hasPlainFilter(f: CatalogFilter): boolean {
  return Boolean(f.pathPrefix || f.takenAfter || f.takenBefore);
}

function toHit(r: HitRecord, score: number): SearchHit {
  return {
    id: r.id,
    path: r.path,
    score,
    width: r.width,
    height: r.height,
    takenAt: r.takenAt,
    cameraMake: r.cameraMake,
    cameraModel: r.cameraModel,
    size: r.size,
  };
}

/** So `{ dtype: undefined }` from a flag parser keeps the default. */
function definedOnly<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function directoryBytes(dir: string): number {
  if (!existsSync(dir)) return 0;
  let total = 0;
  for (const name of readdirSync(dir)) {
    const s = statSync(join(dir, name), { throwIfNoEntry: false });
    if (s?.isFile()) total += s.size;
  }
  return total;
}
