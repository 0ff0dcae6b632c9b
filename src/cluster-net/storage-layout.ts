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

/**
 * The job id, written by the coordinator beside its ledger. A worker reads it through its own mount of the storage:
 * a different id or none means the worker would write its shard where the coordinator never looks.
 */
export function jobMarkerPath(storage: string): string {
  return join(storage, "coordinator", "job-id");
}

/** The merged index, as the owner of the rows of the batches merged into it (see JobLedger.markMerged). */
export const MERGED_INDEX = "index";

/**
 * Which coordinator runs the job (host, pid, last beat): refuses a second one where the ledger's file lock does not
 * reach across clients of the share (see holder-file.ts).
 */
export function coordinatorHolderPath(storage: string): string {
  return join(storage, "coordinator", "holder.json");
}

export function mergedIndexDir(storage: string): string {
  return join(storage, MERGED_INDEX);
}

/** Where an owner of committed rows keeps them: a worker's shard, or the merged index. */
export function ownerRowsDir(storage: string, owner: string): string {
  return owner === MERGED_INDEX ? mergedIndexDir(storage) : shardDir(storage, owner);
}
