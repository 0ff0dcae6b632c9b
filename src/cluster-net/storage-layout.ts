// Where things live under the shared storage root (NFS in production): one shard per worker, the coordinator's
// ledger, and the merged index that `imgd query --index <storage>/index` reads.
import { join } from "node:path";

export const SHARDS_DIR = "shards";

export function shardDir(storage: string, workerId: string): string {
  return join(storage, SHARDS_DIR, workerId);
}

export function ledgerPath(storage: string): string {
  return join(storage, "coordinator", "ledger.duckdb");
}

export function mergedIndexDir(storage: string): string {
  return join(storage, "index");
}
