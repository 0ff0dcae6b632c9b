// The mesh wire format: every request and reply between `imgd coordinator` and `imgd worker`, as zod schemas.
// PROTOCOL_VERSION changes whenever a message changes shape or meaning; the coordinator refuses any other version
// at registration, so a stale binary on one host fails loudly instead of mis-reading leases.
import { z } from "zod";
import { STAGE_NAMES } from "../engine/analysis/open-stages.ts";

export const PROTOCOL_VERSION = 2;

export const WorkerInfo = z.object({
  host: z.string().min(1),
  pid: z.number().int(),
  cores: z.number().int().positive(),
  memoryBytes: z.number().nonnegative(),
  threads: z.number().int().positive(),
  version: z.string(),
  /** Models this worker can load, by name. */
  models: z.array(z.string()),
  /** FROM=TO pairs: canonical (coordinator) prefix = this host's prefix. */
  pathMap: z.array(z.object({ from: z.string(), to: z.string() })).default([]),
});
export type WorkerInfo = z.infer<typeof WorkerInfo>;

export const RegisterRequest = z.object({
  protocol: z.number().int(),
  worker: WorkerInfo,
  /** A worker reconnecting after a coordinator restart keeps its id, and with it its shard. */
  workerId: z.string().optional(),
});
export type RegisterRequest = z.infer<typeof RegisterRequest>;

export const FileEntry = z.object({ path: z.string(), size: z.number(), mtimeMs: z.number() });
export type FileEntry = z.infer<typeof FileEntry>;

export const JobInfo = z.object({
  id: z.string(),
  model: z.string(),
  /** Analysis stages to run on every image beside the embedding, with their model names. */
  stages: z.array(z.object({ name: z.enum(STAGE_NAMES), models: z.record(z.string(), z.string()).optional() })),
  /** The storage root as the coordinator sees it; a worker may mount it elsewhere (`--storage`). */
  storage: z.string(),
  /** The photo roots as the coordinator sees them; a worker maps them with its --path-map and checks it can see them. */
  roots: z.array(z.string()).default([]),
  leaseTtlMs: z.number().int().positive(),
  heartbeatMs: z.number().int().positive(),
  /**
   * A few of the job's files under each root, with their sizes: a worker that finds none of a root's where its
   * --path-map puts them (an empty mount point, a map to the wrong folder) would fail every file it is given.
   */
  samples: z.array(FileEntry).default([]),
});
export type JobInfo = z.infer<typeof JobInfo>;

export const RegisterReply = z.object({
  protocol: z.number().int(),
  workerId: z.string(),
  /** Relative to the storage root. */
  shard: z.string(),
  job: JobInfo,
});
export type RegisterReply = z.infer<typeof RegisterReply>;

export const LeaseRequest = z.object({
  workerId: z.string(),
  /** Asked for while the worker still works on a batch: it starts on this one only once that is done. */
  ahead: z.boolean().optional(),
});

export const LeasedBatch = z.object({
  batchId: z.number().int(),
  leaseId: z.string(),
  files: z.array(FileEntry),
  expiresAtMs: z.number(),
});
export type LeasedBatch = z.infer<typeof LeasedBatch>;

export const LeaseReply = z.object({
  batch: LeasedBatch.nullable(),
  /** No more work will come: the job is complete. */
  done: z.boolean(),
  /** Why no batch: paused, draining, all leased. */
  reason: z.string().optional(),
  retryMs: z.number().int().nonnegative(),
});
export type LeaseReply = z.infer<typeof LeaseReply>;

export const WorkerStats = z.object({
  rssBytes: z.number().nonnegative(),
  inFlight: z.number().int().nonnegative(),
  /** Images per second over the last batch. */
  rateNow: z.number().nonnegative(),
  batchSize: z.number().int().positive(),
  errors: z.number().int().nonnegative(),
  note: z.string().optional(),
});
export type WorkerStats = z.infer<typeof WorkerStats>;

export const HeartbeatRequest = z.object({ workerId: z.string(), stats: WorkerStats });
export const HeartbeatReply = z.object({
  renewed: z.number().int(),
  drain: z.boolean(),
  expiresAtMs: z.number(),
});
export type HeartbeatReply = z.infer<typeof HeartbeatReply>;

export const CommitRequest = z.object({
  workerId: z.string(),
  batchId: z.number().int(),
  leaseId: z.string(),
  indexed: z.number().int().nonnegative(),
  failed: z.number().int().nonnegative(),
  /** The batch's files (as leased) that its shard holds as failed: a later rescan that drops one uncounts it. */
  failedPaths: z.array(z.string()).optional(),
  batchMs: z.number().nonnegative(),
});
export type CommitRequest = z.infer<typeof CommitRequest>;

export const CommitReply = z.object({
  /** The batch is committed (by this call or an earlier one). */
  committed: z.boolean(),
  /** It had already been committed; this commit counted for nothing. */
  duplicate: z.boolean(),
});
export type CommitReply = z.infer<typeof CommitReply>;

export const DeregisterRequest = z.object({ workerId: z.string(), reason: z.string() });

/** Why a worker leaves when nothing went wrong (a lease reply's reason, or the worker's own); any other is an error's. */
export const ORDERLY_LEAVE = { jobComplete: "job complete", drained: "drained", drainedByCoordinator: "drained by the coordinator" } as const;
export const ORDERLY_LEAVE_REASONS: ReadonlySet<string> = new Set(Object.values(ORDERLY_LEAVE));

export const ControlRequest = z.object({
  action: z.enum(["pause", "resume", "drain"]),
  workerId: z.string().optional(),
});

export const WorkerState = z.enum(["idle", "working", "draining", "lost", "gone"]);
export type WorkerState = z.infer<typeof WorkerState>;

export const WorkerRow = z.object({
  id: z.string(),
  host: z.string(),
  pid: z.number().int(),
  threads: z.number().int(),
  state: WorkerState,
  rateNow: z.number(),
  rateAverage: z.number(),
  done: z.number().int(),
  inFlight: z.number().int(),
  errors: z.number().int(),
  rssBytes: z.number(),
  heartbeatAgeMs: z.number(),
  batchSize: z.number().int(),
  note: z.string().nullable(),
});
export type WorkerRow = z.infer<typeof WorkerRow>;

export const JobStatus = z.object({
  protocol: z.number().int(),
  jobId: z.string(),
  phase: z.enum(["indexing", "merging", "merged"]),
  paused: z.boolean(),
  total: z.number().int(),
  done: z.number().int(),
  failed: z.number().int(),
  batches: z.object({ queued: z.number().int(), leased: z.number().int(), committed: z.number().int() }),
  rate: z.number(),
  averageRate: z.number(),
  elapsedMs: z.number(),
  etaMs: z.number().nullable(),
  workers: z.array(WorkerRow),
});
export type JobStatus = z.infer<typeof JobStatus>;

export const ErrorReply = z.object({ error: z.string() });

/** One file a worker needs for the job's models, as the coordinator has it. */
export const ModelFile = z.object({
  /** The model it belongs to; a worker checks a model's files together, as the engine resolves them together. */
  model: z.string(),
  /** Relative to a models dir: `<model>.json` (a manifest) or `<model>/<file>`. */
  path: z.string(),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type ModelFile = z.infer<typeof ModelFile>;

/** `GET /v1/models`. Models compiled into the binary (OCR, built-in manifests) have no files here. */
export const ModelFilesReply = z.object({
  files: z.array(ModelFile),
  /** Models of the job the coordinator cannot serve (it lacks them too): a worker needs its own copy. */
  unavailable: z.array(z.object({ model: z.string(), reason: z.string() })),
});
export type ModelFilesReply = z.infer<typeof ModelFilesReply>;

/** `GET /v1/models/file?path=` answers with the file as the body and its sha256 in this header. */
export const MODEL_SHA256_HEADER = "x-imgd-sha256";

/** Work is left and no worker is there to do it: every one that registered is lost or gone, or none has yet. */
export function waitingForWorkers(s: JobStatus): boolean {
  return s.phase === "indexing" && s.workers.every((w) => w.state === "lost" || w.state === "gone");
}
