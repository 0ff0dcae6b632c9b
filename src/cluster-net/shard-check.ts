// Before the merge: does each worker's shard hold every file the ledger says it committed? The merge takes rows by
// path from what it finds, so a shard that cannot be read or lost rows (a catalog deleted, truncated or overwritten on
// the shared storage, a disk that dropped writes) would otherwise go into the index as if it were whole.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { loadDuckDB } from "../engine/native.ts";
import { toCanonicalPath, type PathMapping } from "../engine/path-map.ts";
import { CATALOG_FILE } from "../engine/store/catalog.ts";

export type ShardCheck =
  | { state: "whole" }
  /** Still open by its worker (a lost worker that has not exited yet): try again later. */
  | { state: "locked"; reason: string }
  | { state: "unreadable"; reason: string }
  /** Committed paths (canonical) with no usable row in the shard. */
  | { state: "short"; missing: string[] };

export async function checkShard(dir: string, committed: Iterable<string>, pathMap: PathMapping[]): Promise<ShardCheck> {
  const catalog = join(dir, CATALOG_FILE);
  if (!existsSync(catalog)) return { state: "unreadable", reason: `${catalog} does not exist` };
  let rows: string[];
  try {
    const instance = await loadDuckDB().DuckDBInstance.create(catalog, { access_mode: "READ_ONLY" });
    try {
      const conn = await instance.connect();
      try {
        // A row the merge can take: a failure with its reason, or an indexed image with its embedding.
        const reader = await conn.runAndReadAll(
          "SELECT path FROM images WHERE status = 'failed' OR (status = 'indexed' AND embedding IS NOT NULL)",
        );
        rows = reader.getRows().map((r) => r[0] as string);
      } finally {
        conn.closeSync();
      }
    } finally {
      instance.closeSync();
    }
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { state: /Could not set lock|Conflicting lock/i.test(reason) ? "locked" : "unreadable", reason };
  }
  const present = new Set(rows.map((p) => toCanonicalPath(p, pathMap)));
  const missing = [...committed].filter((p) => !present.has(p));
  return missing.length > 0 ? { state: "short", missing } : { state: "whole" };
}
