// catalog.duckdb: the source of truth for every file imgd has seen, including each embedding.
// Embeddings are stored as raw little-endian float32 BLOBs: the DuckDB appender takes a BLOB in one call,
// while a FLOAT[dims] value is converted element by element in JS (~40 ms per 64x512 batch against <1 ms).
import { dirname, join } from "node:path";
import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from "@duckdb/node-api";
import { deleteImageRows } from "../faces/persons-prototypes.ts";
import { loadDuckDB } from "../native.ts";
import { IdSet } from "./id-set.ts";
import { claimHolderFile, holderProcessText, refuseIfHeld, type HeldFile, type Holder } from "./holder-file.ts";
import type { FailureReason } from "../types.ts";

export const CATALOG_FILE = "catalog.duckdb";

/** idsWhere answers kept (see Catalog.idsWhereCache). */
const IDS_WHERE_CACHED = 8;

export type ImageStatus = "indexed" | "failed";

export interface NewImage {
  path: string;
  size: number;
  mtimeMs: number;
  /** Status change time, when the file list gave one (see ScannedFile). */
  ctimeMs?: number | null;
  imohash: string | null;
  width: number | null;
  height: number | null;
  /** ISO-8601 local date-time; anything else is stored as null. */
  takenAt: string | null;
  cameraMake: string | null;
  cameraModel: string | null;
  status: ImageStatus;
  errorReason?: FailureReason | string | null;
  error?: string | null;
}

export interface KnownFile {
  id: number;
  path: string;
  size: number;
  mtimeMs: number;
  /** Null for a row written without one (an older catalog, a worker's shard, an ingest): not compared then. */
  ctimeMs: number | null;
  imohash: string | null;
  status: ImageStatus;
  /** Why a failed file failed (FailureReason); null for an indexed one. */
  errorReason: string | null;
}

/** A catalogued image's file as a scan now sees it: its path (new, for a move), size, mtime and ctime. */
export interface FileMove {
  id: number;
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs?: number;
}

export interface ImageRecord extends Omit<NewImage, "errorReason" | "error"> {
  id: number;
  errorReason: string | null;
  error: string | null;
  indexedAt: string | null;
}

export interface CatalogFilter {
  pathPrefix?: string;
  /** Inclusive lower bound on taken_at (a date or date-time). */
  takenAfter?: string;
  /** Exclusive upper bound on taken_at. */
  takenBefore?: string;
  /** Predicates over `images` from the analysis stages (has label, text in photo, person), all of which must hold. */
  where?: SqlClause[];
}

/** A SQL predicate over the `images` table with its own $1.. parameters. */
export interface SqlClause {
  sql: string;
  params: DuckDBValue[];
}

export interface CatalogState {
  /** Bumped by every write transaction; the vectors file records the version it reflects. */
  version: number;
  /** Ids are never reused, so a stale vector can never be mistaken for a newer image. */
  nextId: number;
}

export const RECORD_COLUMNS = `id, path, size, mtime_ms, imohash, width, height,
  strftime(taken_at, '%Y-%m-%dT%H:%M:%S') AS taken_at, camera_make, camera_model, status, error_reason, error,
  strftime(indexed_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS indexed_at`;

const LOCAL_DATE_TIME = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?$/;

export class Catalog {
  private queue: Promise<unknown> = Promise.resolve();

  /** Write transactions begun: an answer read before the latest one may no longer hold. */
  private writes = 0;

  /**
   * The last few idsWhere answers, while no write has happened since: the same filter over 1M images, asked for
   * page after page or query after query, costs a scan of the catalog (~200 ms) each time otherwise. 1 MB each.
   */
  private readonly idsWhereCache = new Map<string, { writes: number; ids: IdSet }>();

  /** Whether `images` has its ctime_ms column: a catalog written before it existed and opened read-only has not. */
  private hasCtime = true;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    readonly dims: number,
    private readonly release: () => void,
  ) {}

  static async open(path: string, dims: number, readOnly: boolean): Promise<Catalog> {
    const { instance, release } = await openCatalogFile(path, readOnly);
    const conn = await instance.connect();
    const catalog = new Catalog(instance, conn, dims, release);
    if (!readOnly) await catalog.createTables();
    else {
      const found = await catalog.query(
        "SELECT 1 FROM duckdb_columns() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = 'images' AND column_name = 'ctime_ms'",
      );
      catalog.hasCtime = found.length > 0;
    }
    return catalog;
  }

  async state(): Promise<CatalogState> {
    const [row] = await this.rows("SELECT version, next_id FROM catalog_state");
    return { version: Number(row![0]), nextId: Number(row![1]) };
  }

  /** Those of `hashes` that an indexed image has. */
  async indexedHashes(hashes: string[]): Promise<Set<string>> {
    if (hashes.length === 0) return new Set();
    const marks = hashes.map((_, i) => `$${i + 1}`).join(",");
    const rows = await this.query(`SELECT DISTINCT imohash FROM images WHERE status = 'indexed' AND imohash IN (${marks})`, hashes);
    return new Set(rows.map((r) => r[0] as string));
  }

  /** Whether two indexed images have the same content hash (and so, as a rule, the same embedding). */
  async hasRepeatedContent(): Promise<boolean> {
    const rows = await this.rows("SELECT 1 FROM images WHERE status = 'indexed' GROUP BY imohash HAVING count(*) > 1 LIMIT 1");
    return rows.length > 0;
  }

  /** The directories holding catalogued files, each once (as path.dirname names them; paths are absolute). */
  async folders(): Promise<string[]> {
    const rows = await this.rows("SELECT DISTINCT parse_dirpath(path, '/') FROM images");
    return rows.map((r) => (r[0] as string) || "/");
  }

  /**
   * Every catalogued file, or only those among `paths` (a worker's batch need not read a whole shard). Read a chunk
   * at a time, column by column: every row of a 1M-photo catalog as DuckDB values at once would be held beside the
   * map made of them, and rows cost half as much again to build as columns. The status comes as a boolean: a
   * string is a call into DuckDB per row.
   */
  async knownFiles(paths?: string[]): Promise<Map<string, KnownFile>> {
    const out = new Map<string, KnownFile>();
    if (paths?.length === 0) return out;
    const select = `SELECT id, path, size, mtime_ms, imohash, status = 'indexed', error_reason, ${this.hasCtime ? "ctime_ms" : "NULL"} FROM images`;
    await this.serialized(async () => {
      const result = paths
        ? await this.conn.stream(`${select} WHERE path IN (${paths.map((_, i) => `$${i + 1}`).join(",")})`, paths)
        : await this.conn.stream(select);
      for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) {
        const [ids, pathColumn, sizes, mtimes, hashes, indexed, reasons, ctimes] = chunk.getColumns();
        for (let i = 0; i < chunk.rowCount; i++) {
          const path = pathColumn![i] as string;
          out.set(path, {
            id: Number(ids![i]),
            path,
            size: Number(sizes![i]),
            mtimeMs: mtimes![i] as number,
            imohash: hashes![i] as string | null,
            status: indexed![i] ? "indexed" : "failed",
            errorReason: reasons![i] as string | null,
            ctimeMs: ctimes![i] as number | null,
          });
        }
      }
    });
    return out;
  }

  /**
   * Inserts `rows` in one transaction; a row whose path is already known replaces that row under a new id.
   * `vectors` holds one embedding per 'indexed' row, in order. Returns the new ids and the replaced ones.
   */
  addBatch(
    rows: NewImage[],
    vectors: Float32Array,
    /** More writes for the new ids (e.g. an analysis stage's rows), committed in the same transaction. */
    also?: (conn: DuckDBConnection, ids: number[]) => Promise<void>,
  ): Promise<{ ids: number[]; replacedIds: number[] }> {
    const indexed = rows.filter((r) => r.status === "indexed").length;
    if (vectors.length !== indexed * this.dims) {
      throw new Error(`addBatch: ${indexed} indexed rows need ${indexed * this.dims} floats, got ${vectors.length}`);
    }
    return this.serialized(async () => {
      const replacedIds = await this.idsOfPaths(rows.map((r) => r.path));
      const [state] = await this.query("SELECT next_id FROM catalog_state");
      const nextId = Number(state![0]);
      const ids = rows.map((_, i) => nextId + i);
      const now = new Date().toISOString().replace("T", " ").slice(0, 23);
      await this.transaction(async () => {
        if (replacedIds.length > 0) await this.deleteImages(replacedIds);
        const appender = await this.conn.createAppender("images");
        let v = 0;
        rows.forEach((r, i) => {
          appender.appendBigInt(BigInt(ids[i]!));
          appender.appendVarchar(r.path);
          appender.appendBigInt(BigInt(Math.round(r.size)));
          appender.appendDouble(r.mtimeMs);
          appendNullable(appender, r.imohash);
          appendNullableInt(appender, r.width);
          appendNullableInt(appender, r.height);
          appendNullable(appender, r.takenAt && LOCAL_DATE_TIME.test(r.takenAt) ? r.takenAt : null);
          appendNullable(appender, r.cameraMake);
          appendNullable(appender, r.cameraModel);
          appender.appendVarchar(r.status);
          appendNullable(appender, r.errorReason ?? null);
          appendNullable(appender, r.error ?? null);
          if (r.status === "indexed") {
            const bytes = new Uint8Array(vectors.buffer, vectors.byteOffset + v * this.dims * 4, this.dims * 4);
            appender.appendBlob(bytes);
            v++;
          } else appender.appendNull();
          appender.appendVarchar(now);
          appendNullableDouble(appender, r.ctimeMs ?? null);
          appender.endRow();
        });
        appender.closeSync();
        await also?.(this.conn, ids);
        await this.bumpVersion(nextId + rows.length);
      });
      return { ids, replacedIds };
    });
  }

  /**
   * Gives images new paths (and sizes, mtimes and ctimes) in one transaction, first deleting `removeIds` (rows whose
   * path a move takes). The moves may permute paths among themselves (a swap, a cycle of renames): each path is
   * unique, so the rows whose path changes are parked under a name no file can have before any takes its new one.
   * One UPDATE straight to the new paths is not enough: DuckDB 1.5 passes it for a swap of two rows but refuses one
   * that reverses 3,000 paths as a duplicate key.
   */
  movePaths(moves: FileMove[], removeIds: number[] = []): Promise<void> {
    return this.serialized(() =>
      this.transaction(async () => {
        if (removeIds.length > 0) await this.deleteImages(removeIds);
        if (moves.length > 0) await this.applyMoves(moves);
        await this.bumpVersion();
      }),
    );
  }

  /**
   * Records the ctime of files catalogued without one, whose size and mtime a scan found unchanged, in one UPDATE
   * (a row at a time takes ~1 ms, minutes for a large library). It leaves the catalog version alone: no vector changes.
   */
  setCtimes(rows: { id: number; ctimeMs: number }[]): Promise<void> {
    if (rows.length === 0) return Promise.resolve();
    return this.serialized(() =>
      this.transaction(async () => {
        await this.conn.run("CREATE OR REPLACE TEMP TABLE ctime_updates (id BIGINT, ctime_ms DOUBLE)");
        const appender = await this.conn.createAppender("ctime_updates", "main", "temp");
        for (const r of rows) {
          appender.appendBigInt(BigInt(r.id));
          appender.appendDouble(r.ctimeMs);
          appender.endRow();
        }
        appender.closeSync();
        await this.conn.run("UPDATE images SET ctime_ms = u.ctime_ms FROM ctime_updates u WHERE images.id = u.id");
        await this.conn.run("DROP TABLE ctime_updates");
      }),
    );
  }

  removeIds(ids: number[]): Promise<void> {
    return this.serialized(() =>
      this.transaction(async () => {
        await this.deleteImages(ids);
        await this.bumpVersion();
      }),
    );
  }

  /**
   * One write transaction on the catalog's connection, for rows that belong to existing images. It leaves the
   * catalog version alone: that version tells whether the vectors file is current, and these rows are not vectors.
   */
  write(work: (conn: DuckDBConnection) => Promise<void>, attach?: { path: string; as: string }): Promise<void> {
    return this.serialized(async () => {
      // DuckDB detaches only outside a transaction.
      if (attach) await this.conn.run(`ATTACH '${attach.path.replaceAll("'", "''")}' AS "${attach.as}" (READ_ONLY)`);
      try {
        await this.transaction(() => work(this.conn));
      } finally {
        if (attach) await this.conn.run(`DETACH "${attach.as}"`);
      }
    });
  }

  /**
   * Makes another catalog readable as `as` on this one's connection until `detach`: for a reader of it for a whole
   * run. Attaching it here, rather than opening it in a second DuckDB instance, keeps one descriptor for the file in
   * this process: closing any descriptor of a file drops all of a process's POSIX locks on it, so a second instance
   * would lose its read lock whenever a write() attached and detached the file, and let a writer in.
   */
  attach(path: string, as: string): Promise<void> {
    return this.serialized(async () => {
      refuseIfCatalogHeld(path);
      try {
        await this.conn.run(`ATTACH '${path.replaceAll("'", "''")}' AS "${as}" (READ_ONLY)`);
      } catch (error) {
        throw explainCatalogLock(path, error);
      }
    });
  }

  detach(as: string): Promise<void> {
    return this.serialized(async () => {
      await this.conn.run(`DETACH DATABASE IF EXISTS "${as}"`);
    });
  }

  /** Runs CREATE ... IF NOT EXISTS statements (an analysis stage's tables). */
  ensureTables(ddl: readonly string[]): Promise<void> {
    return this.serialized(async () => {
      for (const statement of ddl) await this.conn.run(statement);
    });
  }

  /** image id -> stage -> version, for the images that went through an analysis stage. */
  async analysisRuns(): Promise<Map<number, Map<string, string>>> {
    const out = new Map<number, Map<string, string>>();
    for (const [id, stage, version] of await this.rows("SELECT image_id, stage, version FROM analysis_runs")) {
      const key = Number(id);
      const runs = out.get(key) ?? new Map<string, string>();
      runs.set(stage as string, version as string);
      out.set(key, runs);
    }
    return out;
  }

  /** A read-only statement for the stage modules' own tables; rows as DuckDB values. */
  read(sql: string, params?: DuckDBValue[]): Promise<DuckDBValue[][]> {
    return this.rows(sql, params);
  }

  /** Names of the tables in this catalog (stage tables exist only once a stage has run). */
  async tables(): Promise<Set<string>> {
    return new Set((await this.rows("SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main'")).map((r) => r[0] as string));
  }

  /** Ids of indexed images for which `where` (SQL over `images`, e.g. an EXISTS on a stage table) holds. */
  async idsWhere(where: SqlClause[]): Promise<IdSet> {
    const params: DuckDBValue[] = [];
    const sql = where.map((c) => {
      const offset = params.length;
      params.push(...c.params);
      // Each clause numbers its own parameters from $1; renumber them into one statement.
      return `(${c.sql.replace(/\$(\d+)/g, (_, n) => `$${Number(n) + offset}`)})`;
    });
    const statement = `SELECT id::DOUBLE FROM images WHERE status = 'indexed' AND ${sql.join(" AND ")}`;
    const key = JSON.stringify([statement, params], (_, v) => (typeof v === "bigint" ? `${v}n` : v));
    const known = this.idsWhereCache.get(key);
    if (known && known.writes === this.writes) {
      this.idsWhereCache.delete(key);
      this.idsWhereCache.set(key, known);
      return known.ids;
    }
    // Read as doubles, a chunk at a time: rows of BIGINTs into a Set cost 3x the query itself.
    const ids = new IdSet();
    const writes = this.writes;
    await this.readChunks(statement, params, ([column]) => {
      for (const id of column!) ids.add(id as number);
    });
    // Kept only if no write ran before or during the read (reads and writes take turns on the one connection).
    if (writes === this.writes) {
      this.idsWhereCache.set(key, { writes, ids });
      for (const oldest of this.idsWhereCache.keys()) if (this.idsWhereCache.size > IDS_WHERE_CACHED) this.idsWhereCache.delete(oldest);
    }
    return ids;
  }

  /**
   * A serialized read handed over a chunk (~2048 rows) at a time, column by column: for results too large to hold
   * as rows, which also cost several times as much to build as columns.
   */
  async readChunks(sql: string, params: DuckDBValue[] | undefined, onChunk: (columns: DuckDBValue[][]) => void): Promise<void> {
    await this.serialized(async () => {
      const result = await this.conn.stream(sql, params);
      for (let chunk = await result.fetchChunk(); chunk && chunk.rowCount > 0; chunk = await result.fetchChunk()) onChunk(chunk.getColumns());
    });
  }

  async getImage(id: number): Promise<ImageRecord | null> {
    const [r] = await this.rows(`SELECT ${RECORD_COLUMNS} FROM images WHERE id = ${toInt(id)}`);
    return r ? toRecord(r) : null;
  }

  /** Records of `ids` that pass `filter`, in no particular order. Only 'indexed' rows are returned. */
  async indexedRecords(ids: number[], filter: CatalogFilter = {}): Promise<ImageRecord[]> {
    if (ids.length === 0) return [];
    // A bare `id IN (...)` is answered from the primary-key index; any other predicate in the same WHERE turns it
    // into a full scan (5x slower at 100K rows), so the filters run here on the few rows fetched.
    const rows = await this.rows(`SELECT ${RECORD_COLUMNS} FROM images WHERE id IN (${ids.map(toInt).join(",")})`);
    const inRange = takenTest(filter);
    return rows
      .map(toRecord)
      .filter((r) => r.status === "indexed" && (!filter.pathPrefix || r.path.startsWith(filter.pathPrefix)) && inRange(r.takenAt));
  }

  /** Ids of the indexed images passing `filter`'s path prefix and dates (not its `where`) if at most `limit` do, else null. */
  async idsPassing(filter: CatalogFilter, limit: number): Promise<number[] | null> {
    const rows = await this.rows(
      `SELECT id, strftime(taken_at, '%Y-%m-%dT%H:%M:%S') FROM images WHERE status = 'indexed' ${filter.pathPrefix ? "AND starts_with(path, $1)" : ""}`,
      filter.pathPrefix ? [filter.pathPrefix] : undefined,
    );
    const inRange = takenTest(filter);
    const ids = rows.filter((r) => inRange(r[1] as string | null)).map((r) => Number(r[0]));
    return ids.length <= limit ? ids : null;
  }

  async getEmbedding(id: number): Promise<Float32Array | null> {
    const [r] = await this.rows(`SELECT embedding FROM images WHERE id = ${toInt(id)} AND status = 'indexed'`);
    return r && r[0] ? blobToFloats(r[0]) : null;
  }

  /** Every stored embedding, a page at a time, in id order. */
  async *embeddings(pageSize = 8192): AsyncGenerator<{ ids: number[]; vectors: Float32Array }> {
    for (let after = -1; ; ) {
      const rows = await this.rows(
        `SELECT id, embedding FROM images WHERE embedding IS NOT NULL AND id > ${after} ORDER BY id LIMIT ${pageSize}`,
      );
      if (rows.length === 0) return;
      const vectors = new Float32Array(rows.length * this.dims);
      rows.forEach((r, i) => vectors.set(blobToFloats(r[1]!), i * this.dims));
      const ids = rows.map((r) => Number(r[0]));
      yield { ids, vectors };
      after = ids[ids.length - 1]!;
    }
  }

  /** Embeddings of `ids` (those that have one), in one read. */
  async embeddingsOf(ids: number[]): Promise<{ ids: number[]; vectors: Float32Array }> {
    if (ids.length === 0) return { ids: [], vectors: new Float32Array(0) };
    const rows = await this.rows(
      `SELECT id, embedding FROM images WHERE id IN (${ids.map(toInt).join(",")}) AND embedding IS NOT NULL`,
    );
    const vectors = new Float32Array(rows.length * this.dims);
    rows.forEach((r, i) => vectors.set(blobToFloats(r[1]!), i * this.dims));
    return { ids: rows.map((r) => Number(r[0])), vectors };
  }

  async embeddedIds(): Promise<number[]> {
    return (await this.rows("SELECT id FROM images WHERE embedding IS NOT NULL")).map((r) => Number(r[0]));
  }

  async counts(): Promise<{ indexed: number; failed: number; total: number; embedded: number }> {
    // count(embedding) on its own reads only the validity mask; next to the FILTERs DuckDB scans the blobs
    // themselves (~200 MB of buffers and ~250 ms at 100K rows), hence the subquery.
    const [r] = await this.rows(`SELECT count(*) FILTER (status = 'indexed'), count(*) FILTER (status = 'failed'),
      count(*), (SELECT count(embedding) FROM images) FROM images`);
    return { indexed: Number(r![0]), failed: Number(r![1]), total: Number(r![2]), embedded: Number(r![3]) };
  }

  async failures(): Promise<{ path: string; reason: string; error: string }[]> {
    const rows = await this.rows("SELECT path, error_reason, error FROM images WHERE status = 'failed' ORDER BY path");
    return rows.map((r) => ({ path: r[0] as string, reason: (r[1] as string) ?? "", error: (r[2] as string) ?? "" }));
  }

  /** Folds the WAL into the database file, so the next open does not replay it. */
  checkpoint(): Promise<void> {
    return this.serialized(async () => void (await this.conn.run("CHECKPOINT")));
  }

  async close(): Promise<void> {
    await this.queue.catch(() => {});
    this.conn.closeSync();
    this.instance.closeSync();
    this.release();
  }

  private async createTables(): Promise<void> {
    await this.conn.run(`CREATE TABLE IF NOT EXISTS images (
      id BIGINT PRIMARY KEY, path VARCHAR UNIQUE NOT NULL, size BIGINT, mtime_ms DOUBLE, imohash VARCHAR,
      width INT, height INT, taken_at TIMESTAMP, camera_make VARCHAR, camera_model VARCHAR,
      status VARCHAR NOT NULL CHECK (status IN ('indexed', 'failed')), error_reason VARCHAR, error VARCHAR,
      embedding BLOB CHECK (embedding IS NULL OR octet_length(embedding) = ${this.dims * 4}), indexed_at TIMESTAMP,
      ctime_ms DOUBLE)`);
    // Catalogs written before ctime_ms existed get it last, where a new catalog has it too (the appender is positional).
    await this.conn.run("ALTER TABLE images ADD COLUMN IF NOT EXISTS ctime_ms DOUBLE");
    // Which optional analyses (faces, objects, ocr) ran on an image, under which model version, and whether they failed.
    await this.conn.run(`CREATE TABLE IF NOT EXISTS analysis_runs (
      image_id BIGINT NOT NULL, stage VARCHAR NOT NULL, version VARCHAR NOT NULL, error VARCHAR)`);
    await this.conn.run("CREATE TABLE IF NOT EXISTS catalog_state (version BIGINT NOT NULL, next_id BIGINT NOT NULL)");
    await this.conn.run(
      "INSERT INTO catalog_state SELECT 0, 1 WHERE NOT EXISTS (SELECT 1 FROM catalog_state)",
    );
  }

  /**
   * `moves` through a temp table, in a few statements whatever their number (a prepared UPDATE per row took ~1 ms:
   * 90 s for a library touched by `chmod -R`). Sizes and times are set in place for every row first; paths only where
   * one changes, as DuckDB rewrites a row whose indexed column is set (a delete and an insert, embedding and all).
   * An UPDATE that compares paths costs ~10 ms at 100K rows however few it changes, a count ~2 ms: so the common
   * case, touches alone, is told by a count.
   */
  private async applyMoves(moves: FileMove[]): Promise<void> {
    // One row per id, the last move winning, as when each was an UPDATE of its own.
    const byId = new Map(moves.map((m) => [m.id, m]));
    await this.conn.run("CREATE OR REPLACE TEMP TABLE file_moves (id BIGINT, path VARCHAR, size BIGINT, mtime_ms DOUBLE, ctime_ms DOUBLE)");
    const appender = await this.conn.createAppender("file_moves", "main", "temp");
    for (const m of byId.values()) {
      appender.appendBigInt(BigInt(toInt(m.id)));
      appender.appendVarchar(m.path);
      appender.appendBigInt(BigInt(Math.round(m.size)));
      appender.appendDouble(m.mtimeMs);
      appendNullableDouble(appender, m.ctimeMs ?? null);
      appender.endRow();
    }
    appender.closeSync();
    await this.conn.run(`UPDATE images SET size = m.size, mtime_ms = m.mtime_ms, ctime_ms = m.ctime_ms
      FROM temp.file_moves m WHERE images.id = m.id`);
    const [renamed] = await this.query("SELECT count(*) FROM images JOIN temp.file_moves m USING (id) WHERE images.path <> m.path");
    if (Number(renamed![0]) > 0) {
      await this.conn.run(`UPDATE images SET path = chr(0) || 'moving ' || images.id
        FROM temp.file_moves m WHERE images.id = m.id AND images.path <> m.path`);
      await this.conn.run("UPDATE images SET path = m.path FROM temp.file_moves m WHERE images.id = m.id AND images.path <> m.path");
    }
    await this.conn.run("DROP TABLE temp.file_moves");
  }

  /** Deletes images and every row that hangs off them: each table with an image_id column. */
  private async deleteImages(ids: number[]): Promise<void> {
    const list = ids.map(toInt).join(",");
    const tables = await this.query(
      "SELECT table_name FROM duckdb_columns() WHERE database_name = current_database() AND column_name = 'image_id' AND schema_name = 'main'",
    );
    await deleteImageRows(this.conn, tables.map((r) => r[0] as string), ids);
    await this.conn.run(`DELETE FROM images WHERE id IN (${list})`);
  }

  private async idsOfPaths(paths: string[]): Promise<number[]> {
    if (paths.length === 0) return [];
    const marks = paths.map((_, i) => `$${i + 1}`).join(",");
    return (await this.query(`SELECT id FROM images WHERE path IN (${marks})`, paths)).map((r) => Number(r[0]));
  }

  private async bumpVersion(nextId?: number): Promise<void> {
    await this.conn.run(
      nextId === undefined
        ? "UPDATE catalog_state SET version = version + 1"
        : `UPDATE catalog_state SET version = version + 1, next_id = ${toInt(nextId)}`,
    );
  }

  /** Write transactions begun so far: an answer computed at one count holds until it changes. */
  get writeCount(): number {
    return this.writes;
  }

  private transaction(work: () => Promise<void>): Promise<void> {
    this.writes++;
    return inTransaction(this.conn, work);
  }

  /** A serialized read; inside a serialized write use `query`. */
  private rows(sql: string, params?: DuckDBValue[]): Promise<DuckDBValue[][]> {
    return this.serialized(() => this.query(sql, params));
  }

  private async query(sql: string, params?: DuckDBValue[]): Promise<DuckDBValue[][]> {
    return (await this.conn.runAndReadAll(sql, params)).getRows();
  }

  /** One connection runs one statement at a time, and a transaction must not interleave with other statements. */
  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => {});
    return run;
  }
}

type Appender = Awaited<ReturnType<DuckDBConnection["createAppender"]>>;

function appendNullable(a: Appender, value: string | null | undefined): void {
  if (value === null || value === undefined) a.appendNull();
  else a.appendVarchar(value);
}

function appendNullableDouble(a: Appender, value: number | null): void {
  if (value === null) a.appendNull();
  else a.appendDouble(value);
}

function appendNullableInt(a: Appender, value: number | null | undefined): void {
  if (value === null || value === undefined) a.appendNull();
  else a.appendInteger(Math.round(value));
}

function toInt(n: number): string {
  if (!Number.isSafeInteger(n)) throw new Error(`not an image id: ${n}`);
  return String(n);
}

function blobToFloats(value: DuckDBValue): Float32Array {
  const bytes = (value as { bytes: Uint8Array }).bytes;
  // Copy so the floats are 4-byte aligned and outlive DuckDB's result buffer.
  return new Float32Array(bytes.slice().buffer);
}

/** One row selected with RECORD_COLUMNS (in that order) as a record. */
export function toRecord(r: DuckDBValue[]): ImageRecord {
  return {
    id: Number(r[0]),
    path: r[1] as string,
    size: Number(r[2]),
    mtimeMs: r[3] as number,
    imohash: r[4] as string | null,
    width: r[5] as number | null,
    height: r[6] as number | null,
    takenAt: r[7] as string | null,
    cameraMake: r[8] as string | null,
    cameraModel: r[9] as string | null,
    status: r[10] as ImageStatus,
    errorReason: r[11] as string | null,
    error: r[12] as string | null,
    indexedAt: r[13] as string | null,
  };
}

/** Beside the catalog: which process has it open for writing (see holder-file.ts). */
export const CATALOG_HOLDER_FILE = "holder.json";

export interface OpenedCatalogFile {
  instance: DuckDBInstance;
  /** Withdraws this process's claim on the catalog; call it after closing `instance`. */
  release(): void;
}

/**
 * DuckDB lets one process write a database file, and none read it meanwhile. Its own message on that names a lock
 * and a PID; this one says what the other process most likely is and what to do. Where the filesystem's locks do
 * not reach across its clients (sshfs; NFS mounted nolock or local_lock=all), DuckDB would let a process on another
 * host (or through another mount) open a catalog that is being written: the holder file beside it refuses that.
 */
export async function openCatalogFile(path: string, readOnly: boolean): Promise<OpenedCatalogFile> {
  let held: HeldFile | null = null;
  if (readOnly) refuseIfCatalogHeld(path);
  else held = claimHolderFile(catalogHolderPath(path), describeHolder(path));
  try {
    const instance = await loadDuckDB().DuckDBInstance.create(path, readOnly ? { access_mode: "READ_ONLY" } : {});
    return { instance, release: () => held?.release() };
  } catch (error) {
    held?.release();
    throw explainCatalogLock(path, error);
  }
}

function catalogHolderPath(catalogPath: string): string {
  return join(dirname(catalogPath), CATALOG_HOLDER_FILE);
}

function describeHolder(path: string): (h: Holder, ageMs: number) => string {
  return (h, ageMs) =>
    openElsewhereText(path, holderProcessText(h, ageMs));
}

/** Refuses to read the catalog at `path` while another process (here or on another host) writes it. */
function refuseIfCatalogHeld(path: string): void {
  refuseIfHeld(catalogHolderPath(path), describeHolder(path));
}

/**
 * DuckDB's error on opening or attaching the catalog at `path`, reworded when another process holds its lock, or when
 * the filesystem takes no locks at all (NFSv3 without lockd answers ENOLCK: that is no other process).
 */
export function explainCatalogLock(path: string, error: unknown): unknown {
  const message = error instanceof Error ? error.message : String(error);
  const unlockable = lockRefusedText(path, message);
  if (unlockable) return new Error(unlockable);
  if (!/lock/i.test(message)) return error;
  return new Error(openElsewhereText(path, message.match(/PID (\d+)/)?.[1]));
}

/**
 * Why DuckDB could not lock the file at `path` when the reason is the filesystem, not another process holding it;
 * null for any other error. DuckDB names a holder ("Conflicting lock is held in ... (PID n)") only when there is one;
 * otherwise its message ends in the system's reason for refusing the lock.
 */
export function lockRefusedText(path: string, message: string): string | null {
  const m = /Could not set lock on file "[^"]*": ([^.]*)/.exec(message);
  if (!m || /Conflicting lock|already held/i.test(m[1]!)) return null;
  return (
    `${path} cannot be locked on this filesystem (${m[1]!.trim()}); DuckDB locks it to keep a second writer out. ` +
    "On NFS, mount it with working locks (NFSv4, or NFSv3 with rpc.statd and lockd on both ends), or keep it on a local disk"
  );
}

function openElsewhereText(path: string, pid: string | undefined): string {
  return (
    `${path} is open for writing in another process${pid ? ` (PID ${pid})` : ""}, most likely imgd serve or imgd index; ` +
    "stop it first, or search through that server"
  );
}

/** A date, an optional time to the minute or second (fractions ignored), and an optional zone (ignored, see below). */
const WALL_CLOCK = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?$/i;

/** Whether a taken_at (as RECORD_COLUMNS reads it) is in `filter`'s date range; with no range, any is. */
function takenTest(filter: CatalogFilter): (takenAt: string | null) => boolean {
  const after = filter.takenAfter ? localTime(filter.takenAfter) : null;
  const before = filter.takenBefore ? localTime(filter.takenBefore) : null;
  if (after === null && before === null) return () => true;
  return (takenAt) => {
    const taken = takenAt ? localTime(takenAt) : null;
    return taken !== null && (after === null || taken >= after) && (before === null || taken < before);
  };
}

/**
 * EXIF date-times carry no zone: compare them as wall-clock times ("2024-06-01" is that day's midnight). Read by
 * its fields, not Date.parse: that takes "1" and "-0001-01-01" for 2001 and rolls 2024-02-30 over into March, so a
 * filter that is no date silently filtered by another one.
 */
export function localTime(value: string): number | null {
  const m = WALL_CLOCK.exec(value);
  if (!m) return null;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map((field) => Number(field ?? 0)) as [number, number, number, number, number, number];
  const t = new Date(0);
  t.setUTCFullYear(year, month - 1, day); // not Date.UTC, which reads years 0-99 as 1900-1999
  t.setUTCHours(hour, minute, second);
  const exists = t.getUTCFullYear() === year && t.getUTCMonth() === month - 1 && t.getUTCDate() === day && t.getUTCHours() === hour && t.getUTCMinutes() === minute && t.getUTCSeconds() === second;
  return exists ? t.getTime() : null;
}

/** Runs `work` in one DuckDB transaction: committed whole or rolled back. */
export async function inTransaction(conn: DuckDBConnection, work: () => Promise<void>): Promise<void> {
  await conn.run("BEGIN TRANSACTION");
  try {
    await work();
    await conn.run("COMMIT");
  } catch (error) {
    await conn.run("ROLLBACK").catch(() => {});
    throw error;
  }
}
