// Merges shard index dirs (one per worker) into one index dir by reading their catalogs, which hold every row and
// its embedding, on top of the rows kept from the index already there (when asked to), so a re-run's merge reads only
// its new shards. The result is built beside the target and swapped in, so a crash mid-merge leaves the previous
// merged index (or none, or the new one complete beside it: see merge-swap.ts) and a rerun starts over; readers never
// see a half-merged index.
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import { cpSync, existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadDuckDB } from "../native.ts";
import { THUMBNAIL_DIR } from "../thumbnail.ts";
import { commitFile } from "./atomic-file.ts";
import { buildingDir, COMPLETE_MARK, replacedDir } from "./merge-swap.ts";
import { CATALOG_FILE, RECORD_COLUMNS, toRecord, type FileMove, type NewImage } from "./catalog.ts";
import { readManifest } from "./index-manifest.ts";
import { IndexStore } from "./index-store.ts";

export interface ShardSource {
  dir: string;
  /** The path to store for a row of this shard, or null to leave the row out (e.g. a batch it never committed). */
  accept(path: string): string | null;
}

export interface MergeOptions {
  /**
   * Which rows of the index now at the target to keep. Given, the merge starts from a copy of that index (its ids,
   * vectors, stage rows and persons) less the rows not kept, and adds the shards' rows; else from an empty index.
   */
  keep?: (path: string) => boolean;
}

export interface MergeReport {
  rows: number;
  /** In the merged index, kept rows included. */
  indexed: number;
  failed: number;
  /** Rows kept from the index that was there (MergeOptions.keep), counted in `rows`, `indexed` and `failed` too. */
  kept: number;
  /** Rows whose path an earlier shard (or the kept index) already supplied. */
  duplicates: number;
  perShard: { dir: string; rows: number }[];
  wallMs: number;
}

const PAGE = 4096;

export async function mergeShards(shards: ShardSource[], outDir: string, opts: MergeOptions = {}): Promise<MergeReport> {
  const t0 = performance.now();
  const base = opts.keep ? readManifest(outDir) : null;
  if (opts.keep && !base) throw new Error(`no index at ${outDir} to keep rows of`);
  const manifests = shards.map((s) => readManifest(s.dir));
  const first = base ?? manifests.find((m) => m !== null);
  if (!first) throw new Error(`no shard to merge into ${outDir}`);
  for (const [i, m] of manifests.entries()) {
    if (m && (m.model.name !== first.model.name || m.model.dims !== first.model.dims)) {
      throw new Error(`shard ${shards[i]!.dir} was built with ${m.model.name}; ${base ? outDir : "the others"} with ${first.model.name}`);
    }
  }
  const building = buildingDir(outDir, process.pid);
  rmSync(building, { recursive: true, force: true });
  // The thumbnail cache is left behind: it is rebuilt on demand, and copying it costs more than the rest.
  if (base) cpSync(outDir, building, { recursive: true, filter: (src) => ![join(outDir, THUMBNAIL_DIR), join(outDir, COMPLETE_MARK)].includes(src) });
  const report: MergeReport = { rows: 0, indexed: 0, failed: 0, kept: 0, duplicates: 0, perShard: [], wallMs: 0 };
  const seen = new Set<string>();
  let store: IndexStore | null = null;
  try {
    store = await IndexStore.open(building, { model: first.model, vectors: first.vectors });
    // Paths a shard supplies by moving a row not kept (same content) there: that row stands for the shard's.
    let moved = new Set<string>();
    if (opts.keep) {
      const dropped: { id: number; imohash: string | null }[] = [];
      for (const [id, path, status, imohash] of await store.read("SELECT id, path, status, imohash FROM images")) {
        if (!opts.keep(path as string)) {
          dropped.push({ id: Number(id), imohash: status === "indexed" ? (imohash as string | null) : null });
          continue;
        }
        seen.add(path as string);
        report.kept++;
        if (status === "indexed") report.indexed++;
        else report.failed++;
      }
      const moves = await movesOntoShardPaths(shards, seen, dropped);
      const movedIds = new Set(moves.map((m) => m.id));
      await store.movePaths(moves, dropped.filter((d) => !movedIds.has(d.id)).map((d) => d.id));
      moved = new Set(moves.map((m) => m.path));
      report.rows = report.kept;
    }
    // The shards' stage models (one job's, so the same), kept so a later run on the merged index keeps them too.
    const stageModels = Object.assign({}, ...manifests.map((m) => m?.stages ?? {}));
    if (Object.keys(stageModels).length > 0) store.recordStageModels(stageModels);
    for (const shard of shards) {
      if (!existsSync(join(shard.dir, CATALOG_FILE))) continue;
      let taken = 0;
      // Shard image id -> merged image id, for the rows of analysis stages (faces, objects, text) that follow.
      const idMap = new Map<number, number>();
      for await (const page of shardRows(shard.dir, first.model.dims)) {
        const rows: (NewImage & { sourceId: number })[] = [];
        const vectors: Float32Array[] = [];
        for (const r of page) {
          const path = shard.accept(r.row.path);
          if (path === null) continue;
          if (seen.has(path)) {
            report.duplicates++;
            continue;
          }
          seen.add(path);
          if (moved.has(path)) {
            taken++;
            report.indexed++;
            continue;
          }
          rows.push({ ...r.row, path, sourceId: r.sourceId });
          if (r.row.status === "indexed") vectors.push(r.embedding!);
        }
        // The store pairs vectors with the 'indexed' rows in order.
        const ordered = [...rows.filter((r) => r.status === "indexed"), ...rows.filter((r) => r.status === "failed")];
        const flat = new Float32Array(vectors.length * first.model.dims);
        vectors.forEach((v, i) => flat.set(v, i * first.model.dims));
        if (ordered.length > 0) {
          const ids = await store.addBatch(ordered.map(({ sourceId: _, ...row }) => row), flat);
          ordered.forEach((r, i) => idMap.set(r.sourceId, ids[i]!));
        }
        taken += rows.length;
        report.indexed += vectors.length;
        report.failed += rows.length - vectors.length;
      }
      if (idMap.size > 0) {
        await store.writeRows((conn) => copyStageRows(conn, [...idMap], "shard"), { path: join(shard.dir, CATALOG_FILE), as: "shard" });
      }
      report.rows += taken;
      report.perShard.push({ dir: shard.dir, rows: taken });
    }
    await store.close();
    commitFile(join(building, COMPLETE_MARK), `${process.pid}\n`);
  } catch (error) {
    await store?.close().catch(() => {});
    rmSync(building, { recursive: true, force: true });
    throw error;
  }
  // A kill between these two renames leaves no index, but the complete new one beside it (see merge-swap.ts).
  const old = replacedDir(outDir, process.pid);
  if (existsSync(outDir)) renameSync(outDir, old);
  renameSync(building, outDir);
  rmSync(old, { recursive: true, force: true });
  report.wallMs = performance.now() - t0;
  return report;
}

/**
 * The rows of `dropped` (not kept from the index merged onto) that the shards' rows of the same content (imohash) take
 * over, each moved to that row's path with its size and mtime: a moved or touched file keeps its id, its stage rows and
 * the persons of its faces, as imgd index moves a file, instead of a copy being added as its row is removed. A shard's
 * row counts only where the merge would take it: accepted, and the first for its path (`taken` holds the kept ones).
 */
async function movesOntoShardPaths(
  shards: ShardSource[],
  taken: ReadonlySet<string>,
  dropped: { id: number; imohash: string | null }[],
): Promise<FileMove[]> {
  const byHash = new Map<string, number[]>();
  for (const d of dropped) if (d.imohash !== null) byHash.set(d.imohash, [...(byHash.get(d.imohash) ?? []), d.id]);
  const moves: FileMove[] = [];
  if (byHash.size === 0) return moves;
  const first = new Set(taken);
  for (const shard of shards) {
    if (!existsSync(join(shard.dir, CATALOG_FILE))) continue;
    const instance = await loadDuckDB().DuckDBInstance.create(join(shard.dir, CATALOG_FILE), { access_mode: "READ_ONLY" });
    try {
      const conn = await instance.connect();
      try {
        const rows = (await conn.runAndReadAll("SELECT path, status, imohash, size, mtime_ms FROM images ORDER BY id")).getRows();
        for (const [shardPath, status, imohash, size, mtimeMs] of rows) {
          const path = shard.accept(shardPath as string);
          if (path === null || first.has(path)) continue;
          first.add(path);
          const id = status === "indexed" && imohash !== null ? byHash.get(imohash as string)?.shift() : undefined;
          if (id !== undefined) moves.push({ id, path, size: Number(size), mtimeMs: mtimeMs as number });
        }
      } finally {
        conn.closeSync();
      }
    } finally {
      instance.closeSync();
    }
  }
  return moves;
}

/**
 * A face's person (and the cluster it was put in) belong to the catalog that assigned them: that person may not exist
 * in this one (a shard has none; a moved file's row is moved, persons and all, by movesOntoShardPaths).
 */
const ASSIGNMENT_COLUMNS = new Set(['"person_id"', '"assigned_by"', '"cluster_id"']);

/**
 * Copies the rows of every per-image table of another catalog (those with an image_id column: stage results and
 * analysis_runs), attached as `from`, into this one, for each pair of image ids [there, here] (one image there may be
 * copied to several here), creating missing tables from the other's own definitions. Row ids drawn from a sequence
 * (faces.id) are drawn afresh, since each catalog numbered its own from 1.
 */
export async function copyStageRows(conn: DuckDBConnection, pairs: [number, number][], from: string): Promise<void> {
  const read = async (sql: string) => (await conn.runAndReadAll(sql)).getRows();
  // A table that also points at faces (face_suggestions) would need its face ids renumbered too; shards never hold
  // such rows (suggestions are made on the merged index, and are its own), so those tables are left out.
  const tables = (
    await read(`SELECT table_name FROM duckdb_columns() WHERE database_name = '${from}' AND schema_name = 'main'
      GROUP BY table_name HAVING bool_or(column_name = 'image_id') AND NOT bool_or(column_name = 'face_id')`)
  ).map((r) => r[0] as string);
  if (tables.length === 0) return;
  for (const [name] of await read(`SELECT sequence_name FROM duckdb_sequences() WHERE database_name = '${from}'`)) {
    await conn.run(`CREATE SEQUENCE IF NOT EXISTS main."${name as string}" START 1`);
  }
  await conn.run("CREATE OR REPLACE TEMP TABLE merge_ids (old BIGINT, new BIGINT)");
  for (let i = 0; i < pairs.length; i += 1000) {
    const values = pairs.slice(i, i + 1000).map(([o, n]) => `(${o}, ${n})`).join(",");
    await conn.run(`INSERT INTO merge_ids VALUES ${values}`);
  }
  for (const table of tables) {
    const [[definition]] = (await read(
      `SELECT sql FROM duckdb_tables() WHERE database_name = '${from}' AND table_name = '${table}'`,
    )) as [[string]];
    await conn.run(definition.replace(/^CREATE TABLE/i, "CREATE TABLE IF NOT EXISTS"));
    const columns = (
      await read(`SELECT column_name, column_default FROM duckdb_columns()
        WHERE database_name = '${from}' AND table_name = '${table}' ORDER BY column_index`)
    )
      .filter(([, fallback]) => !String(fallback ?? "").startsWith("nextval("))
      .map(([c]) => `"${c as string}"`);
    const select = columns.map((c) => (c === '"image_id"' ? "m.new" : ASSIGNMENT_COLUMNS.has(c) ? "NULL" : `t.${c}`)).join(", ");
    await conn.run(
      `INSERT INTO main."${table}" (${columns.join(", ")}) SELECT ${select} FROM "${from}".main."${table}" t JOIN merge_ids m ON m.old = t.image_id`,
    );
  }
  await conn.run("DROP TABLE merge_ids");
}

async function* shardRows(
  dir: string,
  dims: number,
): AsyncGenerator<{ sourceId: number; row: NewImage; embedding: Float32Array | null }[]> {
  const instance = await loadDuckDB().DuckDBInstance.create(join(dir, CATALOG_FILE), { access_mode: "READ_ONLY" });
  const conn = await instance.connect();
  try {
    for (let after = -1; ; ) {
      const reader = await conn.runAndReadAll(
        `SELECT ${RECORD_COLUMNS}, embedding FROM images WHERE id > ${after} ORDER BY id LIMIT ${PAGE}`,
      );
      const rows = reader.getRows();
      if (rows.length === 0) return;
      yield rows.map((r) => toRow(r, dims));
      after = Number(rows[rows.length - 1]![0]);
    }
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

function toRow(r: DuckDBValue[], dims: number): { sourceId: number; row: NewImage; embedding: Float32Array | null } {
  const { id: sourceId, indexedAt: _at, ...row } = toRecord(r);
  const blob = r[14] as { bytes: Uint8Array } | null;
  const embedding = row.status === "indexed" && blob ? new Float32Array(blob.bytes.slice().buffer) : null;
  if (row.status === "indexed" && embedding?.length !== dims) throw new Error(`shard row ${row.path} has no ${dims}-d embedding`);
  return { sourceId, row, embedding };
}
