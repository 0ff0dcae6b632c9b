// Where things live under the shared storage root (NFS in production): one shard per worker, the coordinator's
// ledger, and the merged index that `imgd query --index <storage>/index` reads.
import { readdirSync } from "node:fs";
import { join } from "node:path";

export const SHARDS_DIR = "shards";

export function shardDir(storage: string, workerId: string): string {
  return join(storage, SHARDS_DIR, workerId);
}

export function ledgerPath(storage: string): string {
  return join(storage, "coordinator", "ledger.duckdb");
}

/**
 * The job id, written by the coordinator beside its ledger. A worker reads it through its own mount of the storage:
 * a different id or none means the worker would write its shard where the coordinator never looks.
 */
export function jobMarkerPath(storage: string): string {
  return join(storage, "coordinator", "job-id");
}

export function mergedIndexDir(storage: string): string {
  return join(storage, "index");
}

/**
 * What a merge killed part-way left beside the merged index: the index being built (`index.merging-PID`) or the one
 * being replaced (`index.old-PID`), named so by mergeShards. Only one coordinator holds the ledger at a time, so
 * whichever of these exists when it merges is a dead one's.
 */
export function staleMergeDirs(storage: string): string[] {
  let names: string[];
  try {
    names = readdirSync(storage);
  } catch {
    return [];
  }
  return names.filter((n) => /^index\.(merging|old)-\d+$/.test(n)).map((n) => join(storage, n));
}
