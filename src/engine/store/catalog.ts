// catalog.duckdb: one row per image, the source of truth. Embeddings are kept here too (raw little-endian float32
// BLOBs: far faster to write and read back than FLOAT[] values), so the vector index can always be rebuilt.
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { loadDuckDB } from "../native.ts";

export type ImageStatus = "indexed" | "failed";

export interface NewImage {
  path: string;
  size: number;
  mtimeMs: number;
  imohash: string | null;
  width: number | null;
  height: number | null;
  takenAt: string | null;
  cameraMake: string | null;
  cameraModel: string | null;
  status: ImageStatus;
  errorReason?: string;
  error?: string;
}

export interface KnownFile {
  id: number;
  path: string;
  size: number;
  mtimeMs: number;
  imohash: string | null;
  status: ImageStatus;
}

export interface ImageRecord extends KnownFile {
  width: number | null;
  height: number | null;
  takenAt: string | null;
  cameraMake: string | null;
  cameraModel: string | null;
  errorReason: string | null;
  error: string | null;
  indexedAt: string | null;
}

export interface CatalogFilters {
  pathPrefix?: string;
  takenAfter?: string;
  takenBefore?: string;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS images (
  id BIGINT PRIMARY KEY,
  path VARCHAR NOT NULL UNIQUE,
  size BIGINT NOT NULL,
  mtime_ms DOUBLE NOT NULL,
  imohash VARCHAR,
  width INTEGER,
  height INTEGER,
  taken_at TIMESTAMP,
  camera_make VARCHAR,
  camera_model VARCHAR,
  status VARCHAR NOT NULL,
  error_reason VARCHAR,
  error VARCHAR,
  embedding BLOB,
  indexed_at TIMESTAMP NOT NULL DEFAULT current_timestamp
)`;

const RECORD_COLUMNS = `id, path, size, mtime_ms, imohash, width, height, strftime(taken_at, '%Y-%m-%dT%H:%M:%S') AS taken_at,
  camera_make, camera_model, status, error_reason, error, strftime(indexed_at, '%Y-%m-%dT%H:%M:%S') AS indexed_at`;

function sqlString(value: string): string {
  return `'${value.replaceAll("'", "''")}'`;
}

function toRecord(row: Record<string, unknown>): ImageRecord {
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    id: Number(row.id),
    path: row.path as string,
    size: Number(row.size),
    mtimeMs: Number(row.mtime_ms),
    imohash: (row.imohash as string | null) ?? null,
    status: row.status as ImageStatus,
    width: num(row.width),
    height: num(row.height),
    takenAt: (row.taken_at as string | null) ?? null,
    cameraMake: (row.camera_make as string | null) ?? null,
    cameraModel: (row.camera_model as string | null) ?? null,
    errorReason: (row.error_reason as string | null) ?? null,
    error: (row.error as string | null) ?? null,
    indexedAt: (row.indexed_at as string | null) ?? null,
  };
}

function validIso(iso: string | null): string | null {
  return iso && !Number.isNaN(Date.parse(`${iso.slice(0, 19)}Z`)) ? iso : null;
}

export class Catalog {
  private nextId = 1;

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly db: DuckDBConnection,
    readonly readOnly: boolean,
  ) {}

  static async open(path: string, readOnly: boolean): Promise<Catalog> {
    const duckdb = loadDuckDB();
    let instance: DuckDBInstance;
    try {
      instance = await duckdb.DuckDBInstance.create(path, readOnly ? { access_mode: "READ_ONLY" } : {});
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      if (/lock/i.test(message)) {
        throw new Error(`${path} is in use by another imgd process (DuckDB allows one writer): ${message}`);
      }
      throw err;
    }
    const db = await instance.connect();
    if (!readOnly) await db.run(SCHEMA);
    const catalog = new Catalog(instance, db, readOnly);
    const max = await catalog.scalar("SELECT coalesce(max(id), 0) FROM images");
    catalog.nextId = Number(max) + 1;
    return catalog;
  }

  private async rows(sql: string): Promise<Record<string, unknown>[]> {
    return (await this.db.runAndReadAll(sql)).getRowObjects() as Record<string, unknown>[];
  }

  private async scalar(sql: string): Promise<unknown> {
    return (await this.db.runAndReadAll(sql)).getRows()[0]?.[0];
  }

  async knownFiles(): Promise<Map<string, KnownFile>> {
    const rows = await this.rows("SELECT id, path, size, mtime_ms, imohash, status FROM images");
    const map = new Map<string, KnownFile>();
    for (const r of rows) {
      map.set(r.path as string, {
        id: Number(r.id),
        path: r.path as string,
        size: Number(r.size),
        mtimeMs: Number(r.mtime_ms),
        imohash: (r.imohash as string | null) ?? null,
        status: r.status as ImageStatus,
      });
    }
    return map;
  }

  /** Inserts rows (replacing any row with the same path) in one transaction; returns the new ids and the replaced ones. */
  async insert(rows: NewImage[], embeddings: (Uint8Array | null)[]): Promise<{ ids: number[]; replaced: number[] }> {
    const { DuckDBTimestampValue } = loadDuckDB();
    // EXIF times are wall-clock times without a zone: store them as given, via UTC arithmetic.
    const timestamp = (iso: string) => new DuckDBTimestampValue(BigInt(Date.parse(`${iso.slice(0, 19)}Z`)) * 1000n);
    const paths = rows.map((r) => sqlString(r.path)).join(",");
    await this.db.run("BEGIN TRANSACTION");
    try {
      const replaced = (await this.rows(`SELECT id FROM images WHERE path IN (${paths})`)).map((r) => Number(r.id));
      if (replaced.length > 0) await this.db.run(`DELETE FROM images WHERE id IN (${replaced.join(",")})`);
      const appender = await this.db.createAppender("images");
      const nullable = <T>(value: T | null | undefined, append: (v: T) => void) =>
        value === null || value === undefined ? appender.appendNull() : append(value);
      const now = timestamp(new Date().toISOString());
      const ids: number[] = [];
      rows.forEach((r, i) => {
        const id = this.nextId++;
        ids.push(id);
        appender.appendBigInt(BigInt(id));
        appender.appendVarchar(r.path);
        appender.appendBigInt(BigInt(r.size));
        appender.appendDouble(r.mtimeMs);
        nullable(r.imohash, (v) => appender.appendVarchar(v));
        nullable(r.width, (v) => appender.appendInteger(v));
        nullable(r.height, (v) => appender.appendInteger(v));
        nullable(validIso(r.takenAt), (v) => appender.appendTimestamp(timestamp(v)));
        nullable(r.cameraMake, (v) => appender.appendVarchar(v));
        nullable(r.cameraModel, (v) => appender.appendVarchar(v));
        appender.appendVarchar(r.status);
        nullable(r.errorReason, (v) => appender.appendVarchar(v));
        nullable(r.error, (v) => appender.appendVarchar(v));
        nullable(embeddings[i], (v) => appender.appendBlob(v));
        appender.appendTimestamp(now);
        appender.endRow();
      });
      appender.flushSync();
      appender.closeSync();
      await this.db.run("COMMIT");
      return { ids, replaced };
    } catch (err) {
      await this.db.run("ROLLBACK").catch(() => {});
      throw err;
    }
  }

  async updatePaths(moves: { id: number; path: string; size: number; mtimeMs: number }[]): Promise<void> {
    if (moves.length === 0) return;
    await this.db.run("BEGIN TRANSACTION");
    try {
      for (const m of moves) {
        await this.db.run(
          `UPDATE images SET path = ${sqlString(m.path)}, size = ${m.size}, mtime_ms = ${m.mtimeMs} WHERE id = ${m.id}`,
        );
      }
      await this.db.run("COMMIT");
    } catch (err) {
      await this.db.run("ROLLBACK").catch(() => {});
      throw err;
    }
  }

  async remove(ids: number[]): Promise<void> {
    if (ids.length > 0) await this.db.run(`DELETE FROM images WHERE id IN (${ids.join(",")})`);
  }

  async get(ids: number[], filters: CatalogFilters = {}): Promise<Map<number, ImageRecord>> {
    if (ids.length === 0) return new Map();
    const where = [`id IN (${ids.join(",")})`, "status = 'indexed'"];
    if (filters.pathPrefix) where.push(`starts_with(path, ${sqlString(filters.pathPrefix)})`);
    if (filters.takenAfter) where.push(`taken_at >= TRY_CAST(${sqlString(filters.takenAfter)} AS TIMESTAMP)`);
    if (filters.takenBefore) where.push(`taken_at <= TRY_CAST(${sqlString(filters.takenBefore)} AS TIMESTAMP)`);
    const rows = await this.rows(`SELECT ${RECORD_COLUMNS} FROM images WHERE ${where.join(" AND ")}`);
    return new Map(rows.map((r) => [Number(r.id), toRecord(r)]));
  }

  async embedding(id: number): Promise<Uint8Array | null> {
    const rows = await this.rows(`SELECT embedding FROM images WHERE id = ${id} AND status = 'indexed'`);
    const blob = rows[0]?.embedding as { bytes?: Uint8Array } | Uint8Array | null | undefined;
    if (!blob) return null;
    return blob instanceof Uint8Array ? blob : (blob.bytes ?? null);
  }

  /** Streams (id, embedding) of every indexed row with id > afterId, in id order, in chunks. */
  async *embeddings(afterId = 0, chunk = 8192): AsyncGenerator<{ ids: number[]; blobs: Uint8Array[] }> {
    let from = afterId;
    for (;;) {
      const rows = await this.rows(
        `SELECT id, embedding FROM images WHERE id > ${from} AND status = 'indexed' AND embedding IS NOT NULL ORDER BY id LIMIT ${chunk}`,
      );
      if (rows.length === 0) return;
      const ids = rows.map((r) => Number(r.id));
      const blobs = rows.map((r) => {
        const b = r.embedding as { bytes?: Uint8Array } | Uint8Array;
        return b instanceof Uint8Array ? b : b.bytes!;
      });
      yield { ids, blobs };
      from = ids[ids.length - 1]!;
    }
  }

  async failures(): Promise<{ path: string; reason: string; error: string }[]> {
    const rows = await this.rows("SELECT path, error_reason, error FROM images WHERE status = 'failed' ORDER BY path");
    return rows.map((r) => ({ path: r.path as string, reason: (r.error_reason as string) ?? "", error: (r.error as string) ?? "" }));
  }

  async counts(): Promise<{ indexed: number; failed: number; total: number; maxId: number }> {
    const [row] = await this.rows(
      "SELECT count(*) FILTER (status = 'indexed' AND embedding IS NOT NULL) AS indexed, count(*) FILTER (status = 'failed') AS failed, count(*) AS total, coalesce(max(id), 0) AS max_id FROM images",
    );
    return { indexed: Number(row!.indexed), failed: Number(row!.failed), total: Number(row!.total), maxId: Number(row!.max_id) };
  }

  async checkpoint(): Promise<void> {
    if (!this.readOnly) await this.db.run("CHECKPOINT");
  }

  close(): void {
    this.db.closeSync();
    this.instance.closeSync();
  }
}
