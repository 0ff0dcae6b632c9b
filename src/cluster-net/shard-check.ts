// Before the merge: does each worker's shard hold every file the ledger says it committed? The merge takes rows by
// path from what it finds, so a shard that cannot be read or lost rows (a catalog deleted, truncated or overwritten on
// the shared storage, a disk that dropped writes) would otherwise go into the index as if it were whole.
import { closeSync, openSync } from "node:fs";
import { join } from "node:path";
import { loadDuckDB } from "../engine/native.ts";
import { toCanonicalPath, type PathMapping } from "../engine/path-map.ts";
import { CATALOG_FILE } from "../engine/store/catalog.ts";
import { ownerText } from "./owner-text.ts";

export type ShardCheck =
  | { state: "whole" }
  /** Still open by its worker (a lost worker that has not exited yet): try again later. */
  | { state: "locked"; reason: string }
  | { state: "unreadable"; reason: string }
  /**
   * There, but this process may not read it: written by a worker running as another user with a umask that keeps
   * others out (or read through NFS root_squash as nobody). Indexing its files again would end the same way, so the
   * merge waits for its permissions to be fixed.
   */
  | { state: "denied"; reason: string }
  /** Committed paths (canonical) with no usable row in the shard. */
  | { state: "short"; missing: string[] };

export async function checkShard(dir: string, committed: Iterable<string>, pathMap: PathMapping[]): Promise<ShardCheck> {
  const catalog = join(dir, CATALOG_FILE);
  const access = catalogAccess(dir, catalog);
  if (access) return access;
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
    // The catalog opened above, but DuckDB may also need its write-ahead log, which can be as closed to us.
    if (/Permission denied/i.test(reason)) return denied(dir, catalog, reason);
    return { state: /Could not set lock|Conflicting lock/i.test(reason) ? "locked" : "unreadable", reason };
  }
  const present = new Set(rows.map((p) => toCanonicalPath(p, pathMap)));
  const missing = [...committed].filter((p) => !present.has(p));
  return missing.length > 0 ? { state: "short", missing } : { state: "whole" };
}

/** Why `catalog` cannot even be opened for reading, or null when it can. */
function catalogAccess(dir: string, catalog: string): ShardCheck | null {
  try {
    closeSync(openSync(catalog, "r"));
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== "EACCES" && code !== "EPERM") return { state: "unreadable", reason: code === "ENOENT" ? `${catalog} does not exist` : String(err) };
    return denied(dir, catalog, code);
  }
}

function denied(dir: string, catalog: string, why: string): ShardCheck {
  const uid = process.getuid?.();
  return {
    state: "denied",
    reason:
      `${catalog} cannot be read by this coordinator${uid === undefined ? "" : ` (uid ${uid})`}: ${why}; ${ownerText(dir)}. ` +
      "Its worker ran as another user with a umask that keeps others out, or NFS root_squash maps this coordinator's root to nobody: " +
      `make the shard readable (chmod -R a+rX ${dir}) and start its workers with umask 022; the merge waits until then`,
  };
}
