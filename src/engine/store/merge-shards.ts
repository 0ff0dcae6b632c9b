// Merges shard index dirs (one per worker) into one index dir by reading their catalogs, which hold every row and
// its embedding. The result is built beside the target and swapped in, so a crash mid-merge leaves the previous
// merged index (or none) and a rerun starts over; readers never see a half-merged index.
import type { DuckDBValue } from "@duckdb/node-api";
import { existsSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadDuckDB } from "../native.ts";
import { CATALOG_FILE, RECORD_COLUMNS, toRecord, type NewImage } from "./catalog.ts";
import { readManifest } from "./index-manifest.ts";
import { IndexStore } from "./index-store.ts";

export interface ShardSource {
  dir: string;
  /** The path to store for a row of this shard, or null to leave the row out (e.g. a batch it never committed). */
  accept(path: string): string | null;
}

export interface MergeReport {
  rows: number;
  indexed: number;
  failed: number;
  /** Rows whose path an earlier shard already supplied. */
  duplicates: number;
  perShard: { dir: string; rows: number }[];
  wallMs: number;
}

const PAGE = 4096;

export async function mergeShards(shards: ShardSource[], outDir: string): Promise<MergeReport> {
  const t0 = performance.now();
  const manifests = shards.map((s) => readManifest(s.dir));
  const first = manifests.find((m) => m !== null);
  if (!first) throw new Error(`no shard to merge into ${outDir}`);
  for (const [i, m] of manifests.entries()) {
    if (m && (m.model.name !== first.model.name || m.model.dims !== first.model.dims)) {
      throw new Error(`shard ${shards[i]!.dir} was built with ${m.model.name}; the others with ${first.model.name}`);
    }
  }
  const building = `${outDir}.merging-${process.pid}`;
  rmSync(building, { recursive: true, force: true });
  const store = await IndexStore.open(building, { model: first.model, vectors: first.vectors });
  const report: MergeReport = { rows: 0, indexed: 0, failed: 0, duplicates: 0, perShard: [], wallMs: 0 };
  const seen = new Set<string>();
  try {
    for (const shard of shards) {
      if (!existsSync(join(shard.dir, CATALOG_FILE))) continue;
      let taken = 0;
      for await (const page of shardRows(shard.dir, first.model.dims)) {
        const rows: NewImage[] = [];
        const vectors: Float32Array[] = [];
        for (const r of page) {
          const path = shard.accept(r.row.path);
          if (path === null) continue;
          if (seen.has(path)) {
            report.duplicates++;
            continue;
          }
          seen.add(path);
          rows.push({ ...r.row, path });
          if (r.row.status === "indexed") vectors.push(r.embedding!);
        }
        // The store pairs vectors with the 'indexed' rows in order.
        const ordered = [...rows.filter((r) => r.status === "indexed"), ...rows.filter((r) => r.status === "failed")];
        const flat = new Float32Array(vectors.length * first.model.dims);
        vectors.forEach((v, i) => flat.set(v, i * first.model.dims));
        if (ordered.length > 0) await store.addBatch(ordered, flat);
        taken += rows.length;
        report.indexed += vectors.length;
        report.failed += rows.length - vectors.length;
      }
      report.rows += taken;
      report.perShard.push({ dir: shard.dir, rows: taken });
    }
    await store.close();
  } catch (error) {
    await store.close().catch(() => {});
    rmSync(building, { recursive: true, force: true });
    throw error;
  }
  const old = `${outDir}.old-${process.pid}`;
  if (existsSync(outDir)) renameSync(outDir, old);
  renameSync(building, outDir);
  rmSync(old, { recursive: true, force: true });
  report.wallMs = performance.now() - t0;
  return report;
}

async function* shardRows(dir: string, dims: number): AsyncGenerator<{ row: NewImage; embedding: Float32Array | null }[]> {
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

function toRow(r: DuckDBValue[], dims: number): { row: NewImage; embedding: Float32Array | null } {
  const { id: _id, indexedAt: _at, ...row } = toRecord(r);
  const blob = r[14] as { bytes: Uint8Array } | null;
  const embedding = row.status === "indexed" && blob ? new Float32Array(blob.bytes.slice().buffer) : null;
  if (row.status === "indexed" && embedding?.length !== dims) throw new Error(`shard row ${row.path} has no ${dims}-d embedding`);
  return { row, embedding };
}
