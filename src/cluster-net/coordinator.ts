// The coordinator's behaviour, free of HTTP: register workers, lease batches, renew and expire leases, count
// commits once, and merge the shards when every batch is committed. All durable state is in the JobLedger.
import { counted } from "../engine/counted.ts";
import type { StageSpec } from "../engine/analysis/open-stages.ts";
import { existsSync, mkdirSync, readdirSync, rmSync, statfsSync } from "node:fs";
import { hostname } from "node:os";
import { dirname, join } from "node:path";
import pkg from "../../package.json" with { type: "json" };
import { ProgressModel } from "../engine/progress.ts";
import { inScope, isUnder, rootsWithoutFiles, scanRoots, skipSummary, type ScanResult } from "../engine/scan.ts";
import { commitFile } from "../engine/store/atomic-file.ts";
import { lockRefusedText } from "../engine/store/catalog.ts";
import { claimHolderFile, HOLDER_STALE_MS, holderProcessText, type HeldFile } from "../engine/store/holder-file.ts";
import { mergeShards, type MergeReport } from "../engine/store/merge-shards.ts";
import { settleMerge } from "../engine/store/merge-swap.ts";
import { toCanonicalPath } from "../engine/path-map.ts";
import { JobLedger, type JobRecord, type WorkerRecord } from "./job-ledger.ts";
import { ownerText } from "./owner-text.ts";
import { checkShard } from "./shard-check.ts";
import {
  ORDERLY_LEAVE,
  PROTOCOL_VERSION,
  type CommitReply,
  type CommitRequest,
  type FileEntry,
  type HeartbeatReply,
  type JobStatus,
  type LeaseReply,
  type RegisterReply,
  type RegisterRequest,
  type WorkerRow,
  type WorkerStats,
} from "./protocol.ts";
import { DEFAULT_MODEL } from "../engine/models.ts";
import { coordinatorHolderPath, ownerRowsDir, jobMarkerPath, shardDir, SHARDS_DIR, ledgerPath, mergedIndexDir, MERGED_INDEX } from "./storage-layout.ts";

export interface CoordinatorOptions {
  roots: string[];
  storage: string;
  /** The CLIP model; left out, a resumed job keeps its own and a new one takes the default. */
  model?: string;
  /** Analysis stages every worker runs beside the embedding. */
  stages?: StageSpec[];
  /**
   * Folder names its scans pass over beside the NAS and OS ones (`--exclude-dir`); left out, a resumed job keeps its
   * own, and given, they replace them: the rescan drops the files now excluded and adds those no longer excluded.
   */
  excludeNames?: string[];
  /** Files per lease (default 64); given to a resumed job, it re-splits the batches not yet leased. */
  batchFiles?: number;
  leaseTtlMs: number;
  /**
   * Below this much free space where the ledger is written (default 64 MB, `--min-free-mb`) no batch is leased, and dispatch resumes
   * once there is more: a ledger write that fails for want of space aborted the whole process inside DuckDB.
   */
  minFreeBytes?: number;
  /** Called with one line per notable event (lease expired, worker lost, merge done ...). */
  onEvent?: (line: string) => void;
}

export const DEFAULT_BATCH_FILES = 64;
export const DEFAULT_MIN_FREE_BYTES = 64e6;
/** A few: a root's photos missing from a worker's view are missing all together, one moved or deleted is not. */
const SAMPLES_PER_ROOT = 4;

export class CoordinatorError extends Error {
  constructor(
    readonly status: 400 | 404 | 409 | 426,
    message: string,
  ) {
    super(message);
  }
}

export class Coordinator {
  /**
   * The cluster's rate and ETA over the work this process saw done: its total is what was left when it opened,
   * less the batches leased by an earlier process (see commit()).
   */
  private progress: ProgressModel;
  private progressTotal: number;
  private readonly openedAtMs = Date.now();
  /**
   * Images per second of each worker's last committed batch, as the worker timed it. Timing commits here instead
   * read wrong after a restart: the batches finished while the coordinator was down all land in its first second.
   * With when that commit arrived: about when the worker started on the batch it holds now.
   */
  private readonly batchRates = new Map<string, { rate: number; atMs: number }>();
  /** The tick in progress, which close() waits for before closing the ledger under it. */
  private ticking: Promise<void> | null = null;
  private closed = false;
  /** Ids and drain flags of registered workers; the ledger has the same, this spares a query per request. */
  private readonly known = new Map<string, { drain: boolean; state: string }>();
  private merge: Promise<MergeReport | null | "requeued"> | null = null;
  lastMerge: MergeReport | null = null;
  private lastDeferral = "";
  /** Why leases are held back for want of space, or null; checked at most once a second. */
  private lowSpace: { reason: string | null; checkedMs: number } = { reason: null, checkedMs: -Infinity };
  /** A few files per root that a registering worker looks for (see JobInfo.samples); read on the first registration. */
  private samples: Promise<FileEntry[]> | null = null;
  /** Set once the shards are merged; resolves then. */
  readonly merged: Promise<void>;
  private resolveMerged!: () => void;

  private constructor(
    /** As given, with the job's own model and stages (a resumed job keeps those). */
    readonly opts: CoordinatorOptions & { model: string },
    readonly ledger: JobLedger,
    private job: JobRecord,
    readonly resumed: { done: number } | null,
    private readonly held: HeldFile,
  ) {
    this.progressTotal = job.total - (resumed?.done ?? 0);
    this.progress = new ProgressModel(this.progressTotal);
    this.merged = new Promise((r) => (this.resolveMerged = r));
    if (job.phase === "merged") this.resolveMerged();
  }

  /** Resumes the job in `storage` if there is one for the same roots and model, else scans and starts one. */
  static async open(opts: CoordinatorOptions): Promise<Coordinator> {
    // A new job is scanned before anything is written: a root that does not exist (a typo, a share not mounted)
    // fails here and leaves no ledger behind under --storage.
    const excludeNames = [...new Set(opts.excludeNames ?? [])].sort();
    const scanned = existsSync(ledgerPath(opts.storage)) ? null : withImages(await scanRoots(opts.roots, { excludeNames }), opts);
    const held = withStorageWritable(() => {
      mkdirSync(join(opts.storage, SHARDS_DIR), { recursive: true });
      mkdirSync(dirname(ledgerPath(opts.storage)), { recursive: true });
      return claimHolderFile(coordinatorHolderPath(opts.storage), (h, ageMs) =>
        anotherCoordinatorText(opts.storage, holderProcessText(h, ageMs)) +
        (h.host === hostname() ? "" : ` (one that stopped without a word frees it ${HOLDER_STALE_MS / 1000} s after its last sign)`),
      );
    });
    const ledger = await JobLedger.open(ledgerPath(opts.storage)).catch((err: unknown) => {
      held.release();
      const message = err instanceof Error ? err.message : String(err);
      const refused = lockRefusedText(ledgerPath(opts.storage), message);
      if (refused) throw new Error(refused);
      const holder = /Conflicting lock is held in .*\(PID (\d+)\)/.exec(message);
      if (!holder) throw err;
      throw new Error(anotherCoordinatorText(opts.storage, holder[1]!));
    });
    try {
      // Before anything reads the merged index: a merge killed between its renames left none, but the new one beside it.
      settleMergedIndex(opts);
      let existing = await ledger.job();
      if (existing) {
        // A stage given without model flags keeps the job's models (the shards so far were analysed with them).
        const stages = withJobModels(opts.stages ?? [], existing.stages);
        // What this run asks for that the job differs in: a re-run without the job's --faces said only what the job was.
        const differs: string[] = [];
        if (!sameRoots(existing.roots, opts.roots)) differs.push(opts.roots.join(", "));
        if (existing.model !== (opts.model ?? existing.model)) differs.push(`model ${opts.model}`);
        if (!sameStages(existing.stages, stages)) differs.push(stages.length > 0 ? `stages ${describeStages(stages)}` : "no stages");
        if (differs.length > 0) {
          throw new Error(
            `${opts.storage} holds a job for ${existing.roots.join(", ")} (model ${existing.model}` +
              `${existing.stages.length > 0 ? `, stages ${describeStages(existing.stages)}` : ""}), and this run asks for ${differs.join(", ")}: ` +
              "run it with the job's roots, model and stages to go on with it, give another --storage, or remove its coordinator/ and shards/ " +
              "directories to start over (a shard left there keeps its model)",
          );
        }
        // Stored before the rescan that acts on them: one killed between the two still rescans with the new names when started again.
        if (opts.excludeNames !== undefined && JSON.stringify(excludeNames) !== JSON.stringify(existing.excludeNames)) {
          await ledger.setExcludeNames(excludeNames);
          opts.onEvent?.(
            `--exclude-dir: folders named ${excludeNames.join(", ") || "(none)"} are passed over from now on (were ${existing.excludeNames.join(", ") || "none"})`,
          );
          existing = { ...existing, excludeNames };
        }
        // A merged job too: run again, it leases only what changed since and merges again without what is gone.
        await rescanRoots(ledger, existing, opts);
        existing = (await ledger.job())!;
        // Its index gone (removed by hand), a merged job is merged again: what the index held goes back in the queue.
        if (existing.phase === "merged" && !existsSync(mergedIndexDir(opts.storage))) {
          await ledger.setPhase("merging");
          existing = { ...existing, phase: "merging" };
        }
        // A pause belongs to the process it was given to: kept, it held a job started again (--plain has no key to
        // lift it) at 'PAUSED' for good.
        if (existing.paused) {
          await ledger.setPaused(false);
          existing = { ...existing, paused: false };
          opts.onEvent?.("dispatch was paused when the coordinator stopped: it resumes");
        }
        // Workers need a moment to notice the restart and reconnect before their leases may expire.
        await ledger.extendAllLeases(Date.now() + opts.leaseTtlMs);
        const counts = await ledger.counts();
        opts.onEvent?.(`resumed job ${existing.id}: ${counts.filesDone}/${existing.total} files already committed`);
        if (opts.batchFiles !== undefined && opts.batchFiles !== existing.batchFiles) {
          const batches = await ledger.resplitUnleased(opts.batchFiles);
          opts.onEvent?.(
            `--batch ${opts.batchFiles}: the files not yet leased are now ${batches} batches of up to ${opts.batchFiles} (were ${existing.batchFiles}); ` +
              "batches leased before keep their size",
          );
        }
        commitFile(jobMarkerPath(opts.storage), existing.id);
        if (JSON.stringify(stages) !== JSON.stringify(opts.stages ?? [])) opts.onEvent?.(`stages keep the job's models: ${describeStages(stages)}`);
        // The job's stages, models and all: the model files served to workers are those of opts.stages.
        const coordinator = new Coordinator(
          { ...opts, model: existing.model, stages: existing.stages, excludeNames: existing.excludeNames },
          ledger,
          existing,
          { done: counts.filesDone },
          held,
        );
        for (const w of await ledger.workers()) coordinator.known.set(w.id, { drain: w.drain, state: w.state });
        return coordinator;
      }
      const scan = scanned ?? withImages(await scanRoots(opts.roots, { excludeNames }), opts);
      const files = [...scan.files].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
      const batchFiles = opts.batchFiles ?? DEFAULT_BATCH_FILES;
      const model = opts.model ?? DEFAULT_MODEL;
      const job = await ledger.createJob(opts.roots, model, files, batchFiles, opts.stages ?? [], excludeNames);
      commitFile(jobMarkerPath(opts.storage), job.id);
      opts.onEvent?.(`new job ${job.id}: ${counted(files.length, "file")} in ${counted(Math.ceil(files.length / batchFiles), "batch", "batches")}`);
      return new Coordinator({ ...opts, model, excludeNames }, ledger, job, null, held);
    } catch (error) {
      await ledger.close();
      held.release();
      throw error;
    }
  }

  get jobId(): string {
    return this.job.id;
  }

  get heartbeatMs(): number {
    return Math.max(100, Math.floor(this.opts.leaseTtlMs / 3));
  }

  async register(req: RegisterRequest): Promise<RegisterReply> {
    if (req.protocol !== PROTOCOL_VERSION) throw new CoordinatorError(426, versionText(req.protocol));
    if (!req.worker.models.includes(this.job.model)) {
      throw new CoordinatorError(409, `worker ${req.worker.host} does not have model ${this.job.model}; start it without --no-fetch-models to fetch it from here, or copy it into its models dir`);
    }
    this.samples ??= this.ledger.sampleFiles(this.job.roots, SAMPLES_PER_ROOT).catch((err: unknown) => {
      this.samples = null;
      throw err;
    });
    const samples = await this.samples;
    const workerId = await this.ledger.registerWorker(req.worker, req.workerId, Date.now());
    this.known.set(workerId, { drain: false, state: "idle" });
    this.opts.onEvent?.(`worker ${workerId} registered (${req.worker.host} pid ${req.worker.pid}, ${req.worker.threads} threads, imgd ${req.worker.version})`);
    return {
      protocol: PROTOCOL_VERSION,
      workerId,
      shard: `${SHARDS_DIR}/${workerId}`,
      job: {
        id: this.job.id,
        model: this.job.model,
        stages: this.job.stages,
        storage: this.opts.storage,
        roots: this.job.roots,
        leaseTtlMs: this.opts.leaseTtlMs,
        heartbeatMs: this.heartbeatMs,
        samples,
      },
    };
  }

  /** `ahead`: asked for while the worker still works on a batch (see aheadIdlesOthers). */
  async lease(workerId: string, ahead = false): Promise<LeaseReply> {
    const worker = await this.knownWorker(workerId);
    if (worker.drain || this.job.phase !== "indexing" || this.job.paused) await this.ledger.touchWorker(workerId, Date.now(), null);
    if (worker.drain) return { batch: null, done: true, reason: ORDERLY_LEAVE.drainedByCoordinator, retryMs: 0 };
    if (this.job.phase !== "indexing") return { batch: null, done: true, reason: ORDERLY_LEAVE.jobComplete, retryMs: 0 };
    if (this.job.paused) return { batch: null, done: false, reason: "dispatch paused", retryMs: 500 };
    const full = this.spaceShortage();
    if (full) return { batch: null, done: false, reason: full, retryMs: 5000 };
    if (ahead && (await this.aheadIdlesOthers(workerId))) {
      return { batch: null, done: false, reason: "left for faster workers until this one is free", retryMs: 0 };
    }
    const batch = await this.ledger.leaseBatch(workerId, Date.now() + this.opts.leaseTtlMs);
    if (batch) return { batch, done: false, retryMs: 0 };
    // Everything is leased: poll again soon, since a lease may expire and come back.
    return { batch: null, done: false, reason: "every batch is leased", retryMs: Math.min(1000, this.heartbeatMs) };
  }

  /**
   * Whether a batch leased ahead to `workerId` would wait in its hands while another worker, idle by then, would have
   * finished it: it starts on it only once it is through what it holds, and meanwhile the others empty the queue.
   * Such a batch held the whole job up by a slow host's time for it while the fast ones stood idle. Refused, the
   * worker asks again once it is free, and gets a batch if one is left.
   */
  private async aheadIdlesOthers(workerId: string): Promise<boolean> {
    const now = Date.now();
    const [counts, workers, inFlight] = await Promise.all([this.ledger.counts(), this.ledger.workers(), this.ledger.inFlight()]);
    const own = workers.find((w) => w.id === workerId);
    const ownRate = own ? this.rateOf(own) : 0;
    if (ownRate <= 0) return false;
    const others = workers
      .filter((w) => w.id !== workerId && !w.drain && w.state !== "lost" && w.state !== "gone")
      .map((w) => ({ rate: this.rateOf(w), freeInMs: this.holdingMs(w.id, inFlight.get(w.id) ?? 0, this.rateOf(w), now) }))
      .filter((w) => w.rate > 0);
    const batchFiles = this.job.batchFiles;
    const freeInMs = this.holdingMs(workerId, inFlight.get(workerId) ?? 0, ownRate, now);
    const doneByOthers = others.reduce((sum, w) => sum + (w.rate * freeInMs) / 1000, 0);
    if ((counts.queued - 1) * batchFiles >= doneByOthers) return false;
    const sooner = (w: { rate: number; freeInMs: number }) => w.freeInMs + (batchFiles * 1000) / w.rate;
    return others.some((w) => sooner(w) < sooner({ rate: ownRate, freeInMs }));
  }

  /** Why no batch may be leased now for want of free space (said once as it starts and once as it ends), or null. */
  private spaceShortage(): string | null {
    const now = Date.now();
    if (now - this.lowSpace.checkedMs < 1000) return this.lowSpace.reason;
    const dir = dirname(ledgerPath(this.opts.storage));
    const needed = this.opts.minFreeBytes ?? DEFAULT_MIN_FREE_BYTES;
    let reason: string | null = null;
    try {
      const fs = statfsSync(dir);
      const free = fs.bavail * fs.bsize;
      if (free < needed) {
        reason = `only ${(free / 1e6).toFixed(1)} MB free under ${this.opts.storage} (needs ${(needed / 1e6).toFixed(0)}, --min-free-mb): no batch is leased until there is more`;
      }
    } catch {
      // A filesystem that cannot say how full it is: the writes themselves will tell.
    }
    if (reason && !this.lowSpace.reason) this.opts.onEvent?.(reason);
    if (!reason && this.lowSpace.reason) this.opts.onEvent?.(`space under ${this.opts.storage} again: dispatch resumes`);
    this.lowSpace = { reason, checkedMs: now };
    return reason;
  }

  async heartbeat(workerId: string, stats: WorkerStats): Promise<HeartbeatReply> {
    const worker = await this.knownWorker(workerId);
    const now = Date.now();
    await this.ledger.touchWorker(workerId, now, stats);
    const expiresAtMs = now + this.opts.leaseTtlMs;
    const renewed = await this.ledger.renewLeases(workerId, expiresAtMs);
    return { renewed, drain: worker.drain, expiresAtMs };
  }

  async commit(req: CommitRequest): Promise<CommitReply> {
    await this.knownWorker(req.workerId);
    const result = await this.ledger.commitBatch(req);
    if (!result.committed) throw new CoordinatorError(409, `batch ${req.batchId} was never leased to ${req.workerId} under that lease`);
    if (req.batchMs > 0) this.batchRates.set(req.workerId, { rate: ((req.indexed + req.failed) * 1000) / req.batchMs, atMs: Date.now() });
    if (!result.duplicate) {
      // A batch leased before this process opened was indexed (mostly) while the coordinator was down; those commits
      // all land in its first moments and, counted as progress, read as hundreds of img/s. Left out of the rate,
      // they are no longer left to do either.
      if (result.leasedMs < this.openedAtMs) this.progress.setTotal((this.progressTotal -= result.files));
      else this.progress.advance(result.files, req.failed);
      if (this.job.phase === "indexing" && (await this.ledger.counts()).filesDone === this.job.total) this.kick();
    }
    return { committed: true, duplicate: result.duplicate };
  }

  async deregister(workerId: string, reason: string): Promise<void> {
    await this.knownWorker(workerId);
    const handedBack = await this.ledger.releaseLeases(workerId);
    await this.ledger.setWorkerGone(workerId, reason);
    this.known.get(workerId)!.state = "gone";
    this.opts.onEvent?.(`worker ${workerId} left: ${reason}${handedBack.length ? `; batches ${handedBack.join(", ")} back in the queue` : ""}`);
    this.kick();
  }

  async control(action: "pause" | "resume" | "drain", workerId?: string): Promise<void> {
    if (action === "drain") {
      if (!workerId) throw new CoordinatorError(400, "drain needs a workerId");
      await this.knownWorker(workerId);
      await this.ledger.setDrain(workerId);
      this.known.get(workerId)!.drain = true;
      this.opts.onEvent?.(`draining ${workerId}: it finishes its current batch, then stops`);
    } else {
      await this.ledger.setPaused(action === "pause");
      this.job = { ...this.job, paused: action === "pause" };
      this.opts.onEvent?.(action === "pause" ? "dispatch paused: workers finish their current batch and wait" : "dispatch resumed");
    }
  }

  async drainAll(): Promise<void> {
    for (const w of await this.ledger.workers()) {
      if (w.state === "gone" || w.state === "lost") continue;
      await this.ledger.setDrain(w.id);
      this.known.get(w.id)!.drain = true;
    }
  }

  /** Expires leases, marks silent workers lost, and merges once every batch is committed. Safe to call often. */
  async tick(): Promise<void> {
    if (this.ticking || this.closed) return;
    this.ticking = this.runTick();
    try {
      await this.ticking;
    } finally {
      this.ticking = null;
    }
  }

  /** A tick nobody waits for (after a commit or a departure): its failure is reported, not left unhandled. */
  kick(): void {
    void this.tick().catch((e) => this.opts.onEvent?.(`tick failed: ${e}`));
  }

  private async runTick(): Promise<void> {
    const now = Date.now();
    for (const e of await this.ledger.expireLeases(now)) {
      this.opts.onEvent?.(`batch ${e.batchId} back in the queue: lease of ${e.workerId} expired`);
    }
    for (const id of await this.ledger.markLost(now, this.opts.leaseTtlMs)) {
      this.opts.onEvent?.(`worker ${id} lost: no heartbeat for ${(this.opts.leaseTtlMs / 1000).toFixed(1)} s`);
    }
    const job = this.job;
    if (job.phase === "indexing") {
      const counts = await this.ledger.counts();
      if (counts.queued === 0 && counts.leased === 0) {
        await this.ledger.setPhase("merging");
        this.job = { ...this.job, phase: "merging" };
        this.opts.onEvent?.(`all ${job.total} files committed; merging shards once their workers have closed them`);
      }
    }
    if (this.job.phase === "merging") await this.tryMerge();
  }

  /**
   * Checks every shard against the batches its worker committed before they are merged, and puts back in the queue
   * what a shard does not hold: all of a shard missing from the storage (its worker's --storage was not the shared
   * mount) or unreadable (truncated, overwritten), the batches of the files a readable shard lacks. Merged as they
   * were, those files would silently be out of the index. Returns null when files were put back, else each shard's
   * committed paths, which the merge takes rows by (read once: a large job's paths are a large read).
   */
  private async requeueBrokenShards(owners: string[], workers: WorkerRecord[]): Promise<Map<string, Map<string, number>> | null> {
    let requeued = 0;
    const committedBy = new Map<string, Map<string, number>>();
    for (const id of owners) {
      const dir = ownerRowsDir(this.opts.storage, id);
      if (!existsSync(dir)) {
        const files = await this.ledger.requeueCommittedBy(id);
        requeued += files;
        this.opts.onEvent?.(
          id === MERGED_INDEX
            ? `the merged index is missing at ${dir}: the ${files} files merged into it are back in the queue`
            : `shard of ${id} is missing at ${dir} (that worker's storage was not this one): its ${files} files are back in the queue; start a worker that mounts ${this.opts.storage}`,
        );
        continue;
      }
      const committed = await this.ledger.committedPaths(id);
      committedBy.set(id, committed);
      const check = await checkShard(dir, committed.keys(), workers.find((w) => w.id === id)?.info.pathMap ?? []);
      if (check.state === "whole") continue;
      // Its worker, lost rather than gone, may not have exited yet: the merge waits for the lock to go. The merged
      // index is held by a writer of its own (imgd serve): the merge, which reads it, waits for that to stop. A shard
      // this process may not read would come back the same from the next worker: the merge waits for its permissions.
      if (check.state === "locked") {
        throw new Error(id === MERGED_INDEX ? `${dir} is open in another process (imgd serve?): stop it to merge (${check.reason})` : check.reason);
      }
      if (check.state === "denied") throw new Error(check.reason);
      const label = id === MERGED_INDEX ? "the merged index" : `shard of ${id}`;
      if (check.state === "unreadable") {
        const files = await this.ledger.requeueCommittedBy(id);
        requeued += files;
        this.opts.onEvent?.(`${label} cannot be read (${check.reason}): its ${files} files are back in the queue`);
        continue;
      }
      const batches = [...new Set(check.missing.map((p) => committed.get(p)!))].sort((a, b) => a - b);
      const files = await this.ledger.requeueCommittedBy(id, batches);
      requeued += files;
      this.opts.onEvent?.(
        `${label} at ${dir} lacks ${check.missing.length} of the ${committed.size} files it committed (${check.missing[0]}${check.missing.length > 1 ? ", ..." : ""}): ` +
          `batches ${batches.join(", ")} (${files} files) are back in the queue`,
      );
    }
    if (requeued === 0) return committedBy;
    await this.ledger.setPhase("indexing");
    this.job = { ...this.job, phase: "indexing" };
    this.progressTotal = requeued;
    this.progress = new ProgressModel(requeued);
    this.opts.onEvent?.(`${requeued} files wait for a worker before the merge`);
    return null;
  }

  private async tryMerge(): Promise<void> {
    if (this.merge) return;
    const workers = await this.ledger.workers();
    const owners = await this.ledger.shardOwners();
    // A shard is open for writing until its worker leaves; a lost worker's process is presumed dead.
    const open = workers.filter((w) => owners.includes(w.id) && w.state !== "gone" && w.state !== "lost");
    if (open.length > 0) return;
    const shards = owners.filter((id) => id !== MERGED_INDEX);
    this.merge = (async () => {
      const committedBy = await this.requeueBrokenShards(owners, workers);
      if (!committedBy) return "requeued" as const;
      const sources = shards.map((id) => {
        const accepted = committedBy.get(id) ?? new Map<string, number>();
        const pathMap = workers.find((w) => w.id === id)?.info.pathMap ?? [];
        return {
          dir: shardDir(this.opts.storage, id),
          accept: (path: string) => {
            const canonical = toCanonicalPath(path, pathMap);
            return accepted.has(canonical) ? canonical : null;
          },
        };
      });
      // The rows merged before that are still the job's: a file deleted since, or replaced and redone, is left out.
      // Rows no batch of the job ever held (imgd serve's uploads under the index, a folder imgd index added outside
      // the roots) are another writer's, and stay.
      const merged = committedBy.get(MERGED_INDEX);
      if (sources.length === 0 && !merged) return null;
      settleMergedIndex(this.opts);
      const index = mergedIndexDir(this.opts.storage);
      const jobs = (path: string) => !isUnder(path, index) && this.job.roots.some((root) => isUnder(path, root));
      return mergeShards(sources, index, merged ? { keep: (path) => merged.has(path) || !jobs(path) } : {});
    })();
    try {
      const report = await this.merge;
      if (report === "requeued") return;
      this.lastMerge = report;
      // The new index holds these shards' rows from here on; only now may they go.
      await this.ledger.markMerged(shards);
      this.job = { ...this.job, phase: "merged" };
      this.opts.onEvent?.(
        report
          ? `merged ${counted(report.perShard.length, "shard")} into ${mergedIndexDir(this.opts.storage)}` +
              `${report.kept > 0 ? ` over the ${report.kept} rows kept from its last merge` : ""}: ` +
              `${report.indexed} indexed, ${report.failed} failed, ${(report.wallMs / 1000).toFixed(1)} s`
          : "nothing to merge",
      );
      await this.removeMergedShards(shards, workers);
      this.resolveMerged();
    } catch (err) {
      // Most often a shard still locked by a worker that is slow to exit: the next tick tries again.
      // Said once per cause: a shard stays locked for as long as its worker is stopped, and ticks come every second.
      const why = `merge deferred: ${err instanceof Error ? err.message : err}`;
      if (why !== this.lastDeferral) this.opts.onEvent?.(why);
      this.lastDeferral = why;
    } finally {
      this.merge = null;
    }
  }

  /**
   * Deletes the shards whose rows no batch needs any more: those just merged (their workers have closed them), and
   * those of workers no longer connected that hold no batch not merged yet (left by a coordinator killed before it
   * deleted them, or holding only batches another worker's commit counted for).
   */
  private async removeMergedShards(merged: string[], workers: WorkerRecord[]): Promise<void> {
    const owners = new Set(await this.ledger.shardOwners());
    const dir = join(this.opts.storage, SHARDS_DIR);
    for (const id of readdirSync(dir)) {
      const state = workers.find((w) => w.id === id)?.state;
      const closed = merged.includes(id) || state === "gone" || state === "lost";
      if (!closed || owners.has(id)) continue;
      try {
        rmSync(join(dir, id), { recursive: true, force: true });
      } catch (err) {
        // Merged all the same: the next merge tries again.
        this.opts.onEvent?.(`cannot remove the merged shard ${join(dir, id)}: ${err instanceof Error ? err.message : err}`);
      }
    }
  }

  async status(): Promise<JobStatus> {
    const now = Date.now();
    const [job, counts, workers, inFlight] = await Promise.all([
      this.ledger.job(),
      this.ledger.counts(),
      this.ledger.workers(),
      this.ledger.inFlight(),
    ]);
    const p = this.progress.snapshot();
    const rows: WorkerRow[] = workers.map((w) => {
      const active = w.state !== "lost" && w.state !== "gone";
      return {
        id: w.id,
        host: w.info.host,
        pid: w.info.pid,
        threads: w.info.threads,
        state: w.state,
        rateNow: active ? this.rateOf(w) : 0,
        rateAverage: w.busyMs > 0 ? (w.done * 1000) / w.busyMs : 0,
        done: w.done,
        inFlight: inFlight.get(w.id) ?? 0,
        errors: w.errors,
        rssBytes: w.stats?.rssBytes ?? 0,
        heartbeatAgeMs: now - w.lastSeenMs,
        batchSize: w.stats?.batchSize ?? 0,
        note: w.state === "gone" && w.leftReason ? `left: ${w.leftReason}` : (w.stats?.note ?? null),
      };
    });
    return {
      protocol: PROTOCOL_VERSION,
      jobId: job!.id,
      phase: job!.phase,
      paused: job!.paused,
      total: job!.total,
      done: counts.filesDone,
      failed: counts.failed,
      batches: { queued: counts.queued, leased: counts.leased, committed: counts.committed },
      rate: p.rate,
      averageRate: p.averageRate,
      elapsedMs: p.elapsedMs,
      etaMs: p.etaMs === null ? null : Math.max(p.etaMs, this.slowestHolderMs(rows, now)),
      workers: rows,
    };
  }

  /**
   * How long the worker slowest to get through the files it holds still needs, at its own rate: the job ends no
   * sooner. The cluster's rate spreads those files over every worker, which read 0:00 for as long as a slow host
   * worked through its last batches while the fast ones stood idle.
   */
  private slowestHolderMs(rows: WorkerRow[], now: number): number {
    let slowest = 0;
    for (const w of rows) {
      if (w.state === "lost" || w.state === "gone") continue;
      slowest = Math.max(slowest, this.holdingMs(w.id, w.inFlight, w.rateNow, now));
    }
    return slowest;
  }

  /** How long a worker needs for the `files` it holds at `rate`, less what it has done of the batch in hand. */
  private holdingMs(workerId: string, files: number, rate: number, now: number): number {
    if (files === 0 || rate <= 0) return 0;
    // Its last commit went out as it started on the batch in hand.
    const intoBatchMs = now - (this.batchRates.get(workerId)?.atMs ?? now);
    return Math.max(0, (files * 1000) / rate - intoBatchMs);
  }

  /** A worker's img/s: its last batch's here, else (until this process sees a commit) its last heartbeat's. */
  private rateOf(w: WorkerRecord): number {
    return this.batchRates.get(w.id)?.rate ?? w.stats?.rateNow ?? 0;
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.ticking?.catch(() => null);
    await this.merge?.catch(() => null);
    await this.ledger.close();
    this.held.release();
  }

  private async knownWorker(workerId: string): Promise<{ drain: boolean; state: string }> {
    const w = this.known.get(workerId);
    if (!w) throw new CoordinatorError(404, `unknown worker ${workerId}; register again`);
    return w;
  }
}

/**
 * Runs `write` (the coordinator's first writes under --storage), turning a permission error into who may not write
 * where: on a share, the storage was often made by another user, and NFS root_squash makes root nobody.
 */
function withStorageWritable<T>(write: () => T): T {
  try {
    return write();
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if ((e.code !== "EACCES" && e.code !== "EPERM" && e.code !== "EROFS") || !e.path) throw err;
    const dir = dirname(e.path);
    const uid = process.getuid?.();
    const who = uid === undefined ? "this coordinator" : `this coordinator (uid ${uid})`;
    if (e.code === "EROFS") throw new Error(`${who} cannot write in ${dir}: the storage is mounted read-only here; mount it read-write`);
    throw new Error(
      `${who} cannot write in ${dir}: ${e.code}; ${ownerText(dir)}. Give --storage a directory this user may write ` +
        "(NFS root_squash maps root to nobody: run the coordinator as a user the share lets write, or let that user write it)",
    );
  }
}

function anotherCoordinatorText(storage: string, pid: string): string {
  return `another coordinator (pid ${pid}) runs the job in ${storage}: stop it first, or give another --storage`;
}

export function versionText(theirs: number): string {
  return `protocol version ${theirs} is not supported by this coordinator (imgd ${pkg.version} speaks ${PROTOCOL_VERSION}); install the same imgd build on every host`;
}

/**
 * A job resumed takes its roots as they are now, scanned with its folder names to pass over (a folder newly excluded
 * goes as if deleted): files added meanwhile join it, and files deleted leave it rather than
 * be merged as "cannot read the file" (see JobLedger.reconcileFiles); a merged job is merged again. As `imgd index` does, a
 * root with no image at all now keeps its files (a share not mounted, most likely), as does a folder the scan could
 * not read; a scan that fails resumes the job as it was.
 */
async function rescanRoots(ledger: JobLedger, job: JobRecord, opts: CoordinatorOptions): Promise<void> {
  let scan: ScanResult;
  try {
    scan = await scanRoots(opts.roots, { excludeNames: job.excludeNames });
  } catch (err) {
    opts.onEvent?.(`cannot scan the roots again (${err instanceof Error ? err.message : err}): resuming with the files as first scanned`);
    return;
  }
  const scope = scan.scope!;
  const skips = skipSummary(scan.skipped);
  if (skips) opts.onEvent?.(skips);
  const emptyRoots = rootsWithoutFiles(opts.roots, scan.files);
  const kept = new Map<string, number>();
  const change = await ledger.reconcileFiles(
    scan.files,
    (unscanned) =>
      unscanned.filter((path) => {
        const empty = emptyRoots.find((r) => isUnder(path, r));
        if (empty) kept.set(empty, (kept.get(empty) ?? 0) + 1);
        return !empty && inScope(scope, path);
      }),
    job.batchFiles,
  );
  for (const [root, files] of kept) opts.onEvent?.(`${root} holds no images now: its ${files} files stay in the job (is the share mounted?)`);
  if (change.added + change.changed + change.dropped > 0) {
    opts.onEvent?.(`roots scanned again: ${change.added} new files, ${change.changed} changed, ${change.dropped} gone since the job was made`);
  }
}

function settleMergedIndex(opts: Pick<CoordinatorOptions, "storage" | "onEvent">): void {
  const { restored, removed } = settleMerge(mergedIndexDir(opts.storage));
  if (restored) opts.onEvent?.(`${mergedIndexDir(opts.storage)} restored from ${restored}, which a merge stopped between its two renames had left complete`);
  for (const dir of removed) opts.onEvent?.(`removed ${dir}, left by a merge that was stopped part-way`);
}

/**
 * A new job's scan, refused when it found no image at all: more likely a share not mounted than an empty library, and
 * a job of no files would be "merged" at once into no index, then resumed as such when the photos are there. A root
 * that alone is empty is said.
 */
function withImages(scan: ScanResult, opts: Pick<CoordinatorOptions, "roots" | "onEvent">): ScanResult {
  if (scan.files.length === 0) {
    throw new Error(`no images under ${opts.roots.join(", ")}: nothing to index (is the share mounted?)`);
  }
  for (const root of rootsWithoutFiles(opts.roots, scan.files)) opts.onEvent?.(`${root} holds no images`);
  const skips = skipSummary(scan.skipped);
  if (skips) opts.onEvent?.(skips);
  return scan;
}

function sameRoots(a: string[], b: string[]): boolean {
  const x = [...a].sort();
  const y = [...b].sort();
  return x.length === y.length && x.every((v, i) => v === y[i]);
}

/** The stages given, each role the flags left out taking the model the job's same stage was started with. */
function withJobModels(given: StageSpec[], job: StageSpec[]): StageSpec[] {
  return given.map((spec) => {
    const own = job.find((j) => j.name === spec.name)?.models;
    return own ? { ...spec, models: { ...own, ...spec.models } } : spec;
  });
}

/** "faces test-scrfd + test-arcface, objects test-yolo". */
function describeStages(stages: StageSpec[]): string {
  return stages.map((st) => `${st.name} ${Object.values(st.models ?? {}).join(" + ")}`.trim()).join(", ");
}

/** Same stages, models and all, whatever the order of their roles (`models: {}` and none are the same). */
function sameStages(a: StageSpec[], b: StageSpec[]): boolean {
  const canonical = (specs: StageSpec[]) =>
    JSON.stringify(specs.map((s) => [s.name, Object.entries(s.models ?? {}).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0))]));
  return canonical(a) === canonical(b);
}
