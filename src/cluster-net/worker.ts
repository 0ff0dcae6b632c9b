// `imgd worker`: register, then pull leased batches, index each into this worker's shard, checkpoint it, and only
// then report the batch committed. Heartbeats renew the leases meanwhile. A coordinator that goes away is waited
import { counted } from "../engine/counted.ts";
// for (backoff) and re-registered with the same id, so the shard and the work in hand survive its restart.
import { freemem, homedir, hostname, availableParallelism, totalmem } from "node:os";
import { dirname, join, resolve } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { closeStages, openStages } from "../engine/analysis/open-stages.ts";
import { runIndex } from "../engine/index-pipeline.ts";
import { listModels, modelSearchDirs, resolveModel } from "../engine/models.ts";
import { toLocalPath, type PathMapping } from "../engine/path-map.ts";
import { DEFAULT_MEMORY_TARGET_BYTES, governMemory } from "../engine/memory-governor.ts";
import { returnLargeBlocks } from "../engine/native-memory.ts";
import { IndexDonor } from "../engine/store/index-donor.ts";
import { IndexStore } from "../engine/store/index-store.ts";
import { ThreadedImageEmbedder } from "../engine/threaded-image-embedder.ts";
import { MeshClient, MeshRefusal, withBackoff } from "./mesh-client.ts";
import { checkJobModels, fetchJobModels } from "./model-fetch.ts";
import { mergedIndexDir } from "./storage-layout.ts";
import { pathMapProblem, photosProblem, shardsDirProblem, storageMismatch } from "./worker-checks.ts";
import {
  CommitReply,
  HeartbeatReply,
  LeaseReply,
  ORDERLY_LEAVE,
  PROTOCOL_VERSION,
  RegisterReply,
  type LeasedBatch,
  type WorkerStats,
} from "./protocol.ts";
import { z } from "zod";

export interface WorkerOptions {
  coordinator: string;
  token: string;
  threads: number;
  /** Where this host mounts the storage root; defaults to the coordinator's path. */
  storage?: string;
  modelsDir?: string;
  /** Fetch the job's model files this host lacks from the coordinator before registering (default true). */
  fetchModels?: boolean;
  pathMap?: PathMapping[];
  /** Resident memory above which the worker collects garbage between batches' work (default 400 MB). */
  memoryTargetBytes?: number;
  /** Images per inference batch to start from; halved on out-of-memory. */
  batchSize?: number;
  host?: string;
  /** Aborting drains: the batch in hand is finished and committed, then the worker leaves. */
  drain?: AbortSignal;
  log?: (line: string) => void;
}

export interface WorkerSummary {
  workerId: string;
  batches: number;
  files: number;
  /** Files that took the embedding of an image of the same content in the merged index instead of being embedded. */
  reused: number;
  duplicates: number;
  /** Time in lease + commit round trips (the coordinator's share of each batch). */
  meshMs: number;
  /** Time indexing and checkpointing. */
  batchMs: number;
  reason: string;
}

const OOM = /out of memory|ENOMEM|bad_alloc|allocation failed|Cannot allocate|failed to allocate/i;

export function isOutOfMemory(err: unknown): boolean {
  return OOM.test(err instanceof Error ? `${err.name} ${err.message}` : String(err));
}

/**
 * Images per inference batch. With ViT-B/32-sized int8 towers on 2 cores, 8 indexed as fast as 32 or faster
 * (16.1-19.7 vs 14.6-17.0 img/s) and peaked at 413 MiB against 540-554 (bench/cluster-scaling.ts --model
 * clip-q8-cost --worker-batch N): a larger batch only holds more activations.
 */
export const DEFAULT_WORKER_BATCH = 8;

/** Starting inference batch: at most a quarter of free memory for pixels and activations (a generous 16x). */
export function memoryBatchSize(wanted: number, imageSize: number, free = freemem()): number {
  const perImage = 3 * imageSize * imageSize * 4 * 16;
  return Math.max(1, Math.min(wanted, Math.floor((free * 0.25) / perImage)));
}

export async function runWorker(opts: WorkerOptions): Promise<WorkerSummary> {
  const registration: Registration = { workerId: null, left: false };
  try {
    return await registerAndWork(opts, registration);
  } catch (err) {
    // Leaving at once hands its leases back for another worker to redo now rather than when they expire, and the
    // coordinator says why (a full disk, a shard it cannot write) instead of 'lost: no heartbeat'.
    if (registration.workerId !== null && !registration.left) {
      const why = err instanceof Error ? err.message : String(err);
      const client = new MeshClient(opts.coordinator, opts.token, 2_000);
      await deregister(client, registration.workerId, `stopped by an error: ${why}`).catch(() => {});
    }
    throw err;
  }
}

/** Whom the worker registered as, and whether it has deregistered itself. */
interface Registration {
  workerId: string | null;
  left: boolean;
}

async function registerAndWork(opts: WorkerOptions, registration: Registration): Promise<WorkerSummary> {
  const log = opts.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const client = new MeshClient(opts.coordinator, opts.token);
  const host = opts.host ?? hostname();
  const retryLog = outageLog(log);
  // Fetched files go to the --models dir, else the user cache, which then comes first so the engine finds them there.
  const fetchInto = opts.fetchModels === false ? null : resolve(opts.modelsDir ?? join(homedir(), ".cache", "imgd", "models"));
  const modelDirs = [...new Set([...(fetchInto ? [fetchInto] : []), ...modelSearchDirs(opts.modelsDir)])];
  // A stop (SIGTERM) ends the waiting for an unreachable coordinator too: a service manager must be able to stop us.
  const stop = opts.drain;
  const fetchOpts = { dirs: modelDirs, log, onRetry: retryLog, signal: stop };
  if (fetchInto) await fetchJobModels(client, { ...fetchOpts, target: fetchInto });
  else await checkJobModels(client, fetchOpts);
  const models = listModels(modelDirs)
    .models.filter((m) => m.imagePath)
    .map((m) => m.manifest.name);
  const info = {
    host,
    pid: process.pid,
    cores: availableParallelism(),
    memoryBytes: totalmem(),
    threads: opts.threads,
    version: pkg.version,
    models,
    pathMap: opts.pathMap ?? [],
  };
  const register = (workerId?: string) =>
    withBackoff(() => client.post("/v1/register", { protocol: PROTOCOL_VERSION, worker: info, workerId }, RegisterReply), {
      onRetry: retryLog,
      signal: stop,
    });

  let reg = await register();
  const workerId = reg.workerId;
  registration.workerId = workerId;
  log(`[worker] registered as ${workerId} with ${opts.coordinator}; job ${reg.job.id}, model ${reg.job.model}`);
  const storage = opts.storage ?? reg.job.storage;
  const refusal =
    storageMismatch(storage, reg.job.id, reg.job.storage) ??
    shardsDirProblem(dirname(join(storage, reg.shard))) ??
    pathMapProblem(reg.job.roots, opts.pathMap ?? []) ??
    photosProblem(reg.job, opts.pathMap ?? []);
  if (refusal) {
    registration.left = true;
    await deregister(client, workerId, "misconfigured host").catch(() => {});
    throw new Error(refusal);
  }
  const model = await resolveModel(reg.job.model, modelDirs);
  const shard = join(storage, reg.shard);
  const store = await IndexStore.open(shard, {
    model: { name: model.manifest.name, dims: model.manifest.dims, preprocess: model.manifest.preprocess, tokenizer: model.manifest.tokenizer },
  });
  // Long-lived: freed large native blocks go back to the system (its tower keeps onnxruntime's arena, so its runs do
  // not pay for that as the server's arena-less ones would), and the JS heap's garbage is collected while the
  // process is above its memory target.
  returnLargeBlocks();
  const target = opts.memoryTargetBytes ?? DEFAULT_MEMORY_TARGET_BYTES;
  const governor = target > 0 ? governMemory(target) : null;
  // A re-run's moved or touched files are leased again (the coordinator hashes nothing): the merged index has them.
  const donor = await IndexDonor.open(mergedIndexDir(storage), model.manifest, store).catch((err: unknown) => {
    log(`[worker] cannot read the merged index (${err instanceof Error ? err.message : err}): every file is embedded`);
    return null;
  });
  const embedder = await ThreadedImageEmbedder.open(model, { threads: opts.threads });
  const stages = await openStages(reg.job.stages, { modelDirs, threads: opts.threads });

  let batchSize = memoryBatchSize(opts.batchSize ?? DEFAULT_WORKER_BATCH, model.manifest.preprocess.size);
  let inFlight = 0;
  let rateNow = 0;
  let errors = 0;
  let note: string | undefined;
  let drainRequested = false;
  /** The last donor error logged: said once, not per batch. */
  let donorError: string | null = null;
  opts.drain?.addEventListener("abort", () => {
    log("[worker] draining: finishing the current batch, then leaving");
    drainRequested = true;
  });
  const summary: WorkerSummary = { workerId, batches: 0, files: 0, reused: 0, duplicates: 0, meshMs: 0, batchMs: 0, reason: "" };

  // Re-registering keeps the id; it matters only if the coordinator lost track of us (state wiped).
  const call = async <T>(work: () => Promise<T>): Promise<T> =>
    withBackoff(async () => {
      try {
        return await work();
      } catch (err) {
        if (err instanceof MeshRefusal && err.status === 404) {
          const again = await register(workerId);
          // The coordinator's ledger was started over, or another one took its address: this worker's shard and
          // leases belong to the old job, so it leaves instead of committing them into the new one.
          if (again.job.id !== reg.job.id) {
            registration.left = true;
            await deregister(client, again.workerId, "started for another job").catch(() => {});
            throw new Error(
              `the coordinator at ${opts.coordinator} now runs job ${again.job.id}, not job ${reg.job.id} this worker was started for; start the worker again to join it`,
            );
          }
          reg = again;
          return await work();
        }
        throw err;
      }
    }, { onRetry: retryLog, signal: stop });

  const stats = (): WorkerStats => ({
    rssBytes: process.memoryUsage.rss(),
    inFlight,
    rateNow,
    batchSize,
    errors,
    note,
  });
  let heartbeatBusy = false;
  const beat = async () => {
    if (heartbeatBusy) return;
    heartbeatBusy = true;
    try {
      const reply = await client.post("/v1/heartbeat", { workerId, stats: stats() }, HeartbeatReply);
      if (reply.drain && !drainRequested) {
        log("[worker] the coordinator asked this worker to drain");
        drainRequested = true;
      }
    } catch {
      // The lease loop reports an unreachable coordinator; a missed heartbeat only shortens the lease.
    } finally {
      heartbeatBusy = false;
    }
  };
  // One at once: the coordinator's table shows memory and batch size from the start, not 0M for a heartbeat period.
  void beat();
  const heartbeat = setInterval(beat, reg.job.heartbeatMs);

  // The next lease is asked for while the current batch is indexed, so the worker never waits on the round trip.
  const askLease = (ahead = false) => call(() => client.post("/v1/lease", { workerId, ahead }, LeaseReply));
  let prefetched: Promise<z.infer<typeof LeaseReply>> | null = null;
  let pendingCommit: Promise<void> = Promise.resolve();
  try {
    for (;;) {
      if (drainRequested) {
        summary.reason = ORDERLY_LEAVE.drained;
        break;
      }
      const m0 = performance.now();
      const lease = await (prefetched ?? askLease());
      prefetched = null;
      summary.meshMs += performance.now() - m0;
      if (lease.done) {
        summary.reason = lease.reason ?? ORDERLY_LEAVE.jobComplete;
        break;
      }
      if (!lease.batch) {
        await Bun.sleep(lease.retryMs);
        continue;
      }
      const batch = lease.batch;
      prefetched = askLease(true);
      prefetched.catch(() => {});
      const b0 = performance.now();
      inFlight = batch.files.length;
      const result = await indexBatch(batch);
      const batchMs = performance.now() - b0;
      summary.batchMs += batchMs;
      rateNow = (batch.files.length * 1000) / batchMs;
      // The batch is durable in the shard; the commit is idempotent and goes out while the next batch runs.
      // One commit at a time keeps them in order and bounds what a coordinator outage can pile up.
      const c0 = performance.now();
      await pendingCommit;
      summary.meshMs += performance.now() - c0;
      pendingCommit = call(() =>
        client.post(
          "/v1/commit",
          { workerId, batchId: batch.batchId, leaseId: batch.leaseId, indexed: result.indexed, failed: result.failedPaths.length, failedPaths: result.failedPaths, batchMs },
          CommitReply,
        ),
      ).then((reply) => {
        summary.batches++;
        summary.files += batch.files.length;
        summary.reused += result.reused;
        if (reply.duplicate) summary.duplicates++;
        log(
          `[worker] batch ${batch.batchId}: ${counted(batch.files.length, "file")} in ${(batchMs / 1000).toFixed(2)} s` +
            `${result.reused > 0 ? ` (${result.reused} reused from the merged index)` : ""}${reply.duplicate ? " (already committed elsewhere)" : ""}`,
        );
      });
    }
    const c0 = performance.now();
    await pendingCommit;
    summary.meshMs += performance.now() - c0;
    // A lease asked for but not worked on goes back to the queue when this worker deregisters.
    await prefetched?.catch(() => null);
  } finally {
    clearInterval(heartbeat);
    governor?.stop();
    await embedder.close();
    await closeStages(stages);
    await donor?.close();
    await store.close();
  }
  // Leaving is a courtesy: a coordinator that is gone for good would otherwise hold this process forever.
  registration.left = true;
  await withBackoff(() => deregister(client, workerId, summary.reason), {
    giveUpAfterMs: 10_000,
  }).catch(
    (err) => log(`[worker] could not deregister: ${err instanceof Error ? err.message : err}`),
  );
  log(
    `[worker] ${workerId} leaving (${summary.reason}): ${counted(summary.files, "file")} in ${counted(summary.batches, "batch", "batches")}` +
      `${summary.reused > 0 ? `, ${summary.reused} of them reused from the merged index` : ""}`,
  );
  return summary;

  /** Indexes the batch and checkpoints the shard; the batch is durable when this returns. */
  async function indexBatch(batch: LeasedBatch): Promise<{ indexed: number; failedPaths: string[]; reused: number }> {
    const files = batch.files.map((f) => ({ ...f, path: toLocalPath(f.path, opts.pathMap ?? []) }));
    for (;;) {
      try {
        const report = await runIndex({
          roots: [],
          files,
          indexDir: shard,
          model,
          batchSize,
          threads: opts.threads,
          store,
          embedder,
          stages,
          donor: donor ?? undefined,
          checkpointEveryMs: Number.MAX_SAFE_INTEGER,
        });
        await store.checkpoint();
        if (report.donorError && report.donorError !== donorError) {
          donorError = report.donorError;
          log(`[worker] the merged index did not answer (${donorError}): its files were embedded instead`);
        }
        // Every file failing at once is most often the photo share gone from this host (or unmounted, leaving its
        // empty mount point): stop rather than commit a batch of failures (another worker redoes it).
        const gone = report.failed === files.length ? photosProblem(reg.job, opts.pathMap ?? []) : null;
        if (gone) throw new Error(gone);
        errors += report.failed;
        // As the shard holds them, which the merge takes: a file that failed when this shard first had it is
        // skipped as unchanged, and not in report.failed, if the batch comes back here.
        const rows = await store.knownFiles(files.map((f) => f.path));
        const failedPaths = batch.files.filter((_, i) => rows.get(files[i]!.path)?.status === "failed").map((f) => f.path);
        return { indexed: files.length - failedPaths.length, failedPaths, reused: report.reused };
      } catch (err) {
        if (!isOutOfMemory(err) || batchSize === 1) throw err;
        batchSize = Math.max(1, Math.floor(batchSize / 2));
        note = `batch size halved to ${batchSize} after out of memory`;
        log(`[worker] out of memory (${err instanceof Error ? err.message : err}); halving the batch size to ${batchSize} and retrying`);
      }
    }
  }
}

function deregister(client: MeshClient, workerId: string, reason: string): Promise<unknown> {
  return client.post("/v1/deregister", { workerId, reason }, z.object({ ok: z.boolean() }));
}

/**
 * One line per outage rather than per retry: the heartbeat and the lease loop retry side by side, each doubling its
 * wait, so a down coordinator printed two lines a second. The same failure is repeated at most every 10 s.
 */
function outageLog(log: (line: string) => void, everyMs = 10_000): (err: Error, delayMs: number) => void {
  let last = "";
  let at = -Infinity;
  return (err, delayMs) => {
    const now = Date.now();
    if (err.message === last && now - at < everyMs) return;
    last = err.message;
    at = now;
    log(`[worker] ${err.message}; retrying in ${(delayMs / 1000).toFixed(1)} s`);
  };
}
