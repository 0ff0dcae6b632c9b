// The coordinator's durable state in one DuckDB file: the job, its batches and their files, every lease ever
// granted, and the workers. Each call is one autocommitted statement or one transaction, so a coordinator
// SIGKILLed at any point restarts into a state where committed batches stay committed and every other batch is
// either queued or leased with an expiry.
import type { DuckDBConnection, DuckDBInstance, DuckDBValue } from "@duckdb/node-api";
import { randomUUID } from "node:crypto";
import { loadDuckDB } from "../engine/native.ts";
import { inTransaction } from "../engine/store/catalog.ts";
import type { ScannedFile } from "../engine/types.ts";
import type { StageSpec } from "../engine/analysis/open-stages.ts";
import type { LeasedBatch, WorkerInfo, WorkerState, WorkerStats } from "./protocol.ts";
import { MERGED_INDEX } from "./storage-layout.ts";

/**
 * Whose rows a committed batch's files are: its worker's shard, or, once merged (its shard deleted), the merged
 * index's (MERGED_INDEX). A worker id is never MERGED_INDEX: it ends in -N.
 */
const OWNER = `CASE WHEN merged THEN '${MERGED_INDEX}' ELSE committed_by END`;

export interface JobRecord {
  id: string;
  roots: string[];
  model: string;
  /** Analysis stages every worker runs beside the embedding. */
  stages: StageSpec[];
  /** Folder names the scans of its roots pass over (`--exclude-dir`), beside the NAS and OS ones every scan does. */
  excludeNames: string[];
  batchFiles: number;
  total: number;
  paused: boolean;
  phase: "indexing" | "merging" | "merged";
  createdMs: number;
}

export interface WorkerRecord {
  id: string;
  info: WorkerInfo;
  state: WorkerState;
  registeredMs: number;
  lastSeenMs: number;
  done: number;
  errors: number;
  busyMs: number;
  drain: boolean;
  stats: WorkerStats | null;
  /** Why a gone worker left, as it said when it deregistered ("job complete", "stopped by an error: ..."). */
  leftReason: string | null;
}

export interface BatchCounts {
  queued: number;
  leased: number;
  committed: number;
  filesDone: number;
  failed: number;
}

export class JobLedger {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
  ) {}

  static async open(path: string): Promise<JobLedger> {
    const instance = await loadDuckDB().DuckDBInstance.create(path);
    const ledger = new JobLedger(instance, await instance.connect());
    await ledger.createTables();
    return ledger;
  }

  async job(): Promise<JobRecord | null> {
    const [r] = await this.rows("SELECT id, roots, model, batch_files, total, paused, phase, created_ms, stages, exclude_names FROM job");
    if (!r) return null;
    return {
      id: r[0] as string,
      roots: JSON.parse(r[1] as string) as string[],
      model: r[2] as string,
      batchFiles: Number(r[3]),
      total: Number(r[4]),
      paused: r[5] as boolean,
      phase: r[6] as JobRecord["phase"],
      createdMs: Number(r[7]),
      stages: JSON.parse((r[8] as string | null) ?? "[]") as StageSpec[],
      excludeNames: JSON.parse((r[9] as string | null) ?? "[]") as string[],
    };
  }

  /** Splits `files` into batches of `batchFiles` in one transaction: a crash mid-way leaves no job at all. */
  createJob(
    roots: string[],
    model: string,
    files: ScannedFile[],
    batchFiles: number,
    stages: StageSpec[] = [],
    excludeNames: string[] = [],
  ): Promise<JobRecord> {
    const job: JobRecord = {
      id: randomUUID(),
      roots,
      model,
      stages,
      excludeNames,
      batchFiles,
      total: files.length,
      paused: false,
      phase: files.length === 0 ? "merging" : "indexing",
      createdMs: Date.now(),
    };
    return this.serialized(async () => {
      await this.transaction(async () => {
        await this.conn.run(
          `INSERT INTO job (id, roots, model, batch_files, total, paused, phase, created_ms, stages, exclude_names)
           VALUES ($1, $2, $3, $4, $5, false, $6, $7, $8, $9)`,
          [job.id, JSON.stringify(roots), model, batchFiles, files.length, job.phase, job.createdMs, JSON.stringify(stages), JSON.stringify(excludeNames)],
        );
        const batchCount = Math.ceil(files.length / batchFiles);
        const batches = await this.conn.createAppender("batches");
        for (let b = 0; b < batchCount; b++) {
          batches.appendInteger(b + 1);
          batches.appendVarchar("queued");
          batches.appendInteger(Math.min(batchFiles, files.length - b * batchFiles));
          for (let i = 0; i < 7; i++) batches.appendNull();
          batches.appendInteger(0);
          batches.appendBoolean(false);
          batches.endRow();
        }
        batches.closeSync();
        const rows = await this.conn.createAppender("files");
        files.forEach((f, i) => {
          rows.appendInteger(Math.floor(i / batchFiles) + 1);
          rows.appendVarchar(f.path);
          rows.appendBigInt(BigInt(Math.round(f.size)));
          rows.appendDouble(f.mtimeMs);
          rows.appendNull();
          rows.endRow();
        });
        rows.closeSync();
      });
      return job;
    });
  }

  /**
   * Splits the files of every batch never leased into batches of `batchFiles`, numbered after the last batch, and
   * makes that the job's batch size; returns how many batches they now form. A batch leased before keeps its files:
   * a worker may still commit it under that lease.
   */
  resplitUnleased(batchFiles: number): Promise<number> {
    return this.serialized(async () => {
      let created = 0;
      await this.transaction(async () => {
        const [[last]] = (await this.query("SELECT coalesce(max(id), 0) FROM batches")) as [[number]];
        await this.conn.run(
          `UPDATE files SET batch_id = m.batch_id FROM (
             SELECT f.rowid AS r, $1 + (row_number() OVER (ORDER BY f.batch_id, f.path) - 1) // $2 + 1 AS batch_id
             FROM files f JOIN batches b ON b.id = f.batch_id WHERE b.state = 'queued' AND b.attempts = 0) m
           WHERE files.rowid = m.r`,
          [last, batchFiles],
        );
        await this.conn.run("DELETE FROM batches WHERE state = 'queued' AND attempts = 0 AND id <= $1", [last]);
        const rows = await this.query(
          `INSERT INTO batches SELECT batch_id, 'queued', count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, false
           FROM files WHERE batch_id > $1 GROUP BY batch_id RETURNING id`,
          [last],
        );
        await this.conn.run("UPDATE job SET batch_files = $1", [batchFiles]);
        created = rows.length;
      });
      return created;
    });
  }

  /**
   * Brings the job's files in line with a new scan of its roots, for a coordinator restarted mid-job or run again: files not
   * scanned leave their batches (those `gone` returns, of the ones passed: the rest may still be there), a file
   * whose size or mtime changed leaves its batch and comes back as a new file, and new files are added in new
   * batches of `batchFiles`. A committed batch loses its dropped files too (the merge takes rows by the ledger's
   * paths, so they stay out of the index). Files only ever leave a batch, never join an old one: a worker's commit of a
   * batch it was leased before covers no file it was not given.
   */
  reconcileFiles(
    scanned: ScannedFile[],
    gone: (unscanned: string[]) => string[],
    batchFiles: number,
  ): Promise<{ added: number; dropped: number; changed: number }> {
    return this.serialized(async () => {
      const out = { added: 0, dropped: 0, changed: 0 };
      await this.transaction(async () => {
        await this.conn.run("CREATE OR REPLACE TEMP TABLE rescan (path VARCHAR, size BIGINT, mtime_ms DOUBLE)");
        const rescan = await this.conn.createAppender("rescan", "main", "temp");
        for (const f of scanned) {
          rescan.appendVarchar(f.path);
          rescan.appendBigInt(BigInt(Math.round(f.size)));
          rescan.appendDouble(f.mtimeMs);
          rescan.endRow();
        }
        rescan.closeSync();
        const unscanned = await this.query("SELECT path FROM files WHERE path NOT IN (SELECT path FROM rescan)");
        const dropped = gone(unscanned.map((r) => r[0] as string));
        await this.conn.run("CREATE OR REPLACE TEMP TABLE leaving (path VARCHAR)");
        const leaving = await this.conn.createAppender("leaving", "main", "temp");
        for (const path of dropped) {
          leaving.appendVarchar(path);
          leaving.endRow();
        }
        leaving.closeSync();
        const changed = await this.query(
          `INSERT INTO leaving SELECT f.path FROM files f JOIN rescan r ON r.path = f.path
           WHERE r.size <> f.size OR r.mtime_ms <> f.mtime_ms RETURNING path`,
        );
        const touched = (await this.query("SELECT DISTINCT batch_id FROM files WHERE path IN (SELECT path FROM leaving)")).map((r) => Number(r[0]));
        // A failure that leaves its committed batch (deleted, or replaced and redone) is no longer the job's.
        await this.conn.run(
          `UPDATE batches SET failed = failed - n FROM (SELECT batch_id, count(*) AS n FROM files
             WHERE failed AND path IN (SELECT path FROM leaving) GROUP BY batch_id) f
           WHERE batches.id = f.batch_id AND batches.state = 'committed'`,
        );
        await this.conn.run("DELETE FROM files WHERE path IN (SELECT path FROM leaving)");
        const [[last]] = (await this.query("SELECT coalesce(max(id), 0) FROM batches")) as [[number]];
        const added = await this.query(
          `INSERT INTO files (batch_id, path, size, mtime_ms) SELECT $1 + (row_number() OVER (ORDER BY path) - 1) // $2 + 1, path, size, mtime_ms
           FROM rescan WHERE path NOT IN (SELECT path FROM files) RETURNING path`,
          [last, batchFiles],
        );
        await this.conn.run(
          `INSERT INTO batches SELECT batch_id, 'queued', count(*), NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, false
           FROM files WHERE batch_id > $1 GROUP BY batch_id`,
          [last],
        );
        if (touched.length > 0) {
          const ids = touched.join(",");
          await this.conn.run(`UPDATE batches SET file_count = (SELECT count(*) FROM files f WHERE f.batch_id = batches.id) WHERE id IN (${ids})`);
          // One leased before may still be committed under its old lease: it stays, to be leased and committed empty.
          await this.conn.run(`DELETE FROM batches WHERE id IN (${ids}) AND state = 'queued' AND attempts = 0 AND file_count = 0`);
        }
        await this.conn.run("UPDATE job SET total = (SELECT count(*) FROM files)");
        // New files wait for a worker; a merged job that only lost files is merged again without them.
        if (added.length > 0) await this.conn.run("UPDATE job SET phase = 'indexing' WHERE phase <> 'indexing'");
        else if (dropped.length > 0) await this.conn.run("UPDATE job SET phase = 'merging' WHERE phase = 'merged'");
        await this.conn.run("DROP TABLE rescan");
        await this.conn.run("DROP TABLE leaving");
        out.added = added.length - changed.length;
        out.dropped = dropped.length;
        out.changed = changed.length;
      });
      return out;
    });
  }

  /** The folder names the job's scans pass over from now on; the next reconcileFiles brings its files in line. */
  setExcludeNames(names: string[]): Promise<void> {
    return this.exec("UPDATE job SET exclude_names = $1", [JSON.stringify(names)]);
  }

  setPaused(paused: boolean): Promise<void> {
    return this.exec("UPDATE job SET paused = $1", [paused]);
  }

  setPhase(phase: JobRecord["phase"]): Promise<void> {
    return this.exec("UPDATE job SET phase = $1", [phase]);
  }

  /** Gives the lowest queued batch to `workerId` until `expiresAtMs`, or null when none is queued. */
  leaseBatch(workerId: string, expiresAtMs: number, nowMs = Date.now()): Promise<LeasedBatch | null> {
    return this.serialized(async () => {
      const leaseId = randomUUID();
      let out: LeasedBatch | null = null;
      // One transaction, one WAL flush: lease, its record, and the worker's state change land together.
      await this.transaction(async () => {
        const leased = await this.query(
          `UPDATE batches SET state = 'leased', lease_id = $1, worker_id = $2, expires_ms = $3, attempts = attempts + 1
           WHERE id = (SELECT min(id) FROM batches WHERE state = 'queued') RETURNING id`,
          [leaseId, workerId, expiresAtMs],
        );
        // Idle only when it holds nothing: a worker asks for its next batch while it works on the one in hand.
        await this.conn.run(
          `UPDATE workers SET last_seen_ms = $1, state = CASE WHEN EXISTS
             (SELECT 1 FROM batches WHERE state = 'leased' AND worker_id = $2) THEN 'working' ELSE 'idle' END
           WHERE id = $2`,
          [nowMs, workerId],
        );
        if (leased.length === 0) return;
        const batchId = Number(leased[0]![0]);
        await this.conn.run("INSERT INTO leases VALUES ($1, $2, $3, $4)", [leaseId, batchId, workerId, nowMs]);
        const files = await this.query("SELECT path, size, mtime_ms FROM files WHERE batch_id = $1 ORDER BY path", [batchId]);
        out = {
          batchId,
          leaseId,
          expiresAtMs,
          files: files.map((f) => ({ path: f[0] as string, size: Number(f[1]), mtimeMs: f[2] as number })),
        };
      });
      return out;
    });
  }

  /** A worker leaving hands back what it still holds. */
  async releaseLeases(workerId: string): Promise<number[]> {
    const rows = await this.rows(
      `UPDATE batches SET state = 'queued', lease_id = NULL, worker_id = NULL, expires_ms = NULL
       WHERE state = 'leased' AND worker_id = $1 RETURNING id`,
      [workerId],
    );
    return rows.map((r) => Number(r[0]));
  }

  /** Extends every lease `workerId` still holds; returns how many. */
  async renewLeases(workerId: string, expiresAtMs: number): Promise<number> {
    const rows = await this.rows(
      "UPDATE batches SET expires_ms = $1 WHERE state = 'leased' AND worker_id = $2 RETURNING id",
      [expiresAtMs, workerId],
    );
    return rows.length;
  }

  /** Returns expired leased batches to the queue. */
  expireLeases(nowMs: number): Promise<{ batchId: number; workerId: string }[]> {
    return this.serialized(async () => {
      const expired = await this.query("SELECT id, worker_id FROM batches WHERE state = 'leased' AND expires_ms < $1", [nowMs]);
      if (expired.length === 0) return [];
      await this.conn.run(
        `UPDATE batches SET state = 'queued', lease_id = NULL, worker_id = NULL, expires_ms = NULL
         WHERE id IN (${expired.map((r) => Number(r[0])).join(",")})`,
      );
      return expired.map((r) => ({ batchId: Number(r[0]), workerId: r[1] as string }));
    });
  }

  /** Every lease still open gets `untilMs` at least: a restarted coordinator gives its workers time to reconnect. */
  extendAllLeases(untilMs: number): Promise<void> {
    return this.exec("UPDATE batches SET expires_ms = greatest(expires_ms, $1) WHERE state = 'leased'", [untilMs]);
  }

  /**
   * Idempotent: the first commit under any lease ever granted for the batch wins (its shard holds the rows the
   * merge will take); any later commit is a duplicate and counts nothing. A lease never granted is refused.
   * `leasedMs` is when the lease was granted.
   */
  commitBatch(c: {
    workerId: string;
    batchId: number;
    leaseId: string;
    indexed: number;
    failed: number;
    failedPaths?: string[];
    batchMs: number;
  }): Promise<{ committed: boolean; duplicate: boolean; files: number; leasedMs: number }> {
    return this.serialized(async () => {
      const [lease] = await this.query("SELECT leased_ms FROM leases WHERE lease_id = $1 AND batch_id = $2 AND worker_id = $3", [
        c.leaseId,
        c.batchId,
        c.workerId,
      ]);
      if (!lease) return { committed: false, duplicate: false, files: 0, leasedMs: 0 };
      const leasedMs = Number(lease[0]);
      const [batch] = await this.query("SELECT state, file_count FROM batches WHERE id = $1", [c.batchId]);
      if (!batch) return { committed: false, duplicate: false, files: 0, leasedMs };
      if (batch[0] === "committed") return { committed: true, duplicate: true, files: 0, leasedMs };
      const files = Number(batch[1]);
      await this.transaction(async () => {
        await this.conn.run(
          `UPDATE batches SET state = 'committed', committed_by = $1, indexed = $2, failed = $3, committed_ms = $4,
           lease_id = NULL, worker_id = NULL, expires_ms = NULL WHERE id = $5`,
          [c.workerId, c.indexed, c.failed, Date.now(), c.batchId],
        );
        await this.conn.run(
          "UPDATE workers SET done = done + $1, errors = errors + $2, busy_ms = busy_ms + $3, last_seen_ms = $4 WHERE id = $5",
          [files, c.failed, c.batchMs, Date.now(), c.workerId],
        );
        if (c.failedPaths?.length) {
          await this.conn.run(
            `UPDATE files SET failed = true WHERE batch_id = $1 AND path IN (${c.failedPaths.map((_, i) => `$${i + 2}`).join(",")})`,
            [c.batchId, ...c.failedPaths],
          );
        }
      });
      return { committed: true, duplicate: false, files, leasedMs };
    });
  }

  async counts(): Promise<BatchCounts> {
    const [r] = await this.rows(`SELECT count(*) FILTER (state = 'queued'), count(*) FILTER (state = 'leased'),
      count(*) FILTER (state = 'committed'), coalesce(sum(file_count) FILTER (state = 'committed'), 0),
      coalesce(sum(failed), 0) FROM batches`);
    return {
      queued: Number(r![0]),
      leased: Number(r![1]),
      committed: Number(r![2]),
      filesDone: Number(r![3]),
      failed: Number(r![4]),
    };
  }

  /** Files per leased batch, by worker: what each worker has in flight. */
  async inFlight(): Promise<Map<string, number>> {
    const rows = await this.rows("SELECT worker_id, sum(file_count) FROM batches WHERE state = 'leased' GROUP BY worker_id");
    return new Map(rows.map((r) => [r[0] as string, Number(r[1])]));
  }

  /**
   * Canonical paths of the files whose rows `owner` (a worker's shard, or MERGED_INDEX) holds, each with its batch:
   * exactly what the merge takes from it.
   */
  async committedPaths(owner: string): Promise<Map<string, number>> {
    const rows = await this.rows(
      `SELECT f.path, f.batch_id FROM files f JOIN batches b ON b.id = f.batch_id WHERE b.state = 'committed' AND ${OWNER} = $1`,
      [owner],
    );
    return new Map(rows.map((r) => [r[0] as string, Number(r[1])]));
  }

  /**
   * Puts the committed batches whose rows `owner` (a worker's shard, or MERGED_INDEX) held back in the queue (it
   * lost them): those of `batchIds`, or every one. Returns how many files.
   */
  async requeueCommittedBy(owner: string, batchIds?: number[]): Promise<number> {
    if (batchIds?.length === 0) return 0;
    const only = batchIds ? ` AND id IN (${batchIds.map((id) => Math.trunc(id)).join(",")})` : "";
    const rows = await this.rows(
      `UPDATE batches SET state = 'queued', committed_by = NULL, indexed = NULL, failed = NULL, committed_ms = NULL, merged = false
       WHERE state = 'committed' AND ${OWNER} = $1${only} RETURNING id, file_count`,
      [owner],
    );
    if (rows.length > 0) await this.exec(`UPDATE files SET failed = NULL WHERE batch_id IN (${rows.map((r) => Number(r[0])).join(",")})`);
    return rows.reduce((sum, r) => sum + Number(r[1]), 0);
  }

  /** Up to `perRoot` files under each of `roots`, spread evenly over its files in path order. */
  async sampleFiles(roots: string[], perRoot: number): Promise<{ path: string; size: number; mtimeMs: number }[]> {
    const out: { path: string; size: number; mtimeMs: number }[] = [];
    for (const root of roots) {
      const rows = await this.rows(
        `SELECT path, size, mtime_ms FROM (
           SELECT path, size, mtime_ms, row_number() OVER (ORDER BY path) - 1 AS i, count(*) OVER () AS n
           FROM files WHERE path = $1 OR starts_with(path, $2))
         WHERE i % greatest(1, n // $3) = 0 ORDER BY path LIMIT $3`,
        [root, root.endsWith("/") ? root : `${root}/`, perRoot],
      );
      out.push(...rows.map((r) => ({ path: r[0] as string, size: Number(r[1]), mtimeMs: r[2] as number })));
    }
    return out;
  }

  /** Who holds committed rows: the workers whose shards are not merged yet, and MERGED_INDEX once a merge took some. */
  async shardOwners(): Promise<string[]> {
    const rows = await this.rows(`SELECT DISTINCT ${OWNER} FROM batches WHERE state = 'committed' ORDER BY 1`);
    return rows.map((r) => r[0] as string);
  }

  /**
   * After a merge is in place: the batches committed by `workerIds` are the merged index's from now on (their shards
   * may go), and the job is merged. Called only once the index holding their rows has replaced the previous one.
   */
  markMerged(workerIds: string[]): Promise<void> {
    return this.serialized(() =>
      this.transaction(async () => {
        if (workerIds.length > 0) {
          await this.conn.run(
            `UPDATE batches SET merged = true WHERE state = 'committed' AND committed_by IN (${workerIds.map((_, i) => `$${i + 1}`).join(",")})`,
            workerIds,
          );
        }
        await this.conn.run("UPDATE job SET phase = 'merged'");
      }),
    );
  }

  async registerWorker(info: WorkerInfo, wantedId: string | undefined, nowMs: number): Promise<string> {
    return this.serialized(async () => {
      if (wantedId) {
        const [known] = await this.query("SELECT id FROM workers WHERE id = $1", [wantedId]);
        if (known) {
          await this.conn.run(
            "UPDATE workers SET info = $1, state = 'idle', last_seen_ms = $2, drain = false WHERE id = $3",
            [JSON.stringify(info), nowMs, wantedId],
          );
          return wantedId;
        }
      }
      const [n] = await this.query("SELECT count(*) FROM workers");
      const id = `${info.host.replace(/[^A-Za-z0-9_.-]/g, "_")}-${Number(n![0]) + 1}`;
      await this.conn.run(
        "INSERT INTO workers (id, info, state, registered_ms, last_seen_ms, done, errors, busy_ms, drain, stats) VALUES ($1, $2, 'idle', $3, $3, 0, 0, 0, false, NULL)",
        [id, JSON.stringify(info), nowMs],
      );
      return id;
    });
  }

  async touchWorker(id: string, nowMs: number, stats: WorkerStats | null, state?: WorkerState): Promise<boolean> {
    const rows = await this.rows(
      `UPDATE workers SET last_seen_ms = $1, stats = coalesce($2, stats),
       state = CASE WHEN $3 IS NOT NULL THEN $3 WHEN state IN ('lost', 'gone') THEN 'idle' ELSE state END
       WHERE id = $4 RETURNING id`,
      [nowMs, stats ? JSON.stringify(stats) : null, state ?? null, id],
    );
    return rows.length > 0;
  }

  setWorkerGone(id: string, reason: string): Promise<void> {
    return this.exec("UPDATE workers SET state = 'gone', left_reason = $1 WHERE id = $2", [reason, id]);
  }

  setDrain(id: string): Promise<void> {
    return this.exec("UPDATE workers SET drain = true, state = 'draining' WHERE id = $1 AND state NOT IN ('gone', 'lost')", [id]);
  }

  /** Workers silent for longer than `silentMs` become lost; returns their ids. */
  markLost(nowMs: number, silentMs: number): Promise<string[]> {
    return this.serialized(async () => {
      // Read first: this runs every tick, and a write would cost a WAL flush each time.
      const silent = await this.query("SELECT id FROM workers WHERE state NOT IN ('lost', 'gone') AND last_seen_ms < $1", [
        nowMs - silentMs,
      ]);
      if (silent.length === 0) return [];
      const ids = silent.map((r) => r[0] as string);
      await this.conn.run(`UPDATE workers SET state = 'lost' WHERE id IN (${ids.map((_, i) => `$${i + 1}`).join(",")})`, ids);
      return ids;
    });
  }

  async workers(): Promise<WorkerRecord[]> {
    const rows = await this.rows(
      "SELECT id, info, state, registered_ms, last_seen_ms, done, errors, busy_ms, drain, stats, left_reason FROM workers ORDER BY registered_ms, id",
    );
    return rows.map((r) => ({
      id: r[0] as string,
      info: JSON.parse(r[1] as string) as WorkerInfo,
      state: r[2] as WorkerState,
      registeredMs: Number(r[3]),
      lastSeenMs: Number(r[4]),
      done: Number(r[5]),
      errors: Number(r[6]),
      busyMs: Number(r[7]),
      drain: r[8] as boolean,
      stats: r[9] ? (JSON.parse(r[9] as string) as WorkerStats) : null,
      leftReason: (r[10] as string | null) ?? null,
    }));
  }

  async close(): Promise<void> {
    await this.queue.catch(() => {});
    this.conn.closeSync();
    this.instance.closeSync();
  }

  private async createTables(): Promise<void> {
    await this.conn.run(`CREATE TABLE IF NOT EXISTS job (id VARCHAR PRIMARY KEY, roots VARCHAR, model VARCHAR,
      batch_files INT, total BIGINT, paused BOOLEAN, phase VARCHAR, created_ms DOUBLE, stages VARCHAR)`);
    // `--exclude-dir` names, as JSON; a ledger from before it has none, and its job passes over no folder by name.
    await this.conn.run("ALTER TABLE job ADD COLUMN IF NOT EXISTS exclude_names VARCHAR");
    await this.conn.run(`CREATE TABLE IF NOT EXISTS batches (id INT PRIMARY KEY, state VARCHAR NOT NULL, file_count INT,
      lease_id VARCHAR, worker_id VARCHAR, expires_ms DOUBLE, committed_by VARCHAR, indexed INT, failed INT,
      committed_ms DOUBLE, attempts INT)`);
    await this.conn.run("CREATE TABLE IF NOT EXISTS files (batch_id INT, path VARCHAR, size BIGINT, mtime_ms DOUBLE)");
    // Set at commit from the worker's shard; a ledger from before it has none, and its counts stay as they were.
    await this.conn.run("ALTER TABLE files ADD COLUMN IF NOT EXISTS failed BOOLEAN");
    // True once the batch's rows are in the merged index and no longer in its worker's shard (see markMerged).
    await this.conn.run("ALTER TABLE batches ADD COLUMN IF NOT EXISTS merged BOOLEAN DEFAULT false");
    await this.conn.run(
      "CREATE TABLE IF NOT EXISTS leases (lease_id VARCHAR PRIMARY KEY, batch_id INT, worker_id VARCHAR, leased_ms DOUBLE)",
    );
    await this.conn.run(`CREATE TABLE IF NOT EXISTS workers (id VARCHAR PRIMARY KEY, info VARCHAR, state VARCHAR,
      registered_ms DOUBLE, last_seen_ms DOUBLE, done BIGINT, errors BIGINT, busy_ms DOUBLE, drain BOOLEAN, stats VARCHAR)`);
    // Set when a worker deregisters; a ledger from before it has none, and its gone workers show no reason.
    await this.conn.run("ALTER TABLE workers ADD COLUMN IF NOT EXISTS left_reason VARCHAR");
  }

  private exec(sql: string, params?: DuckDBValue[]): Promise<void> {
    return this.serialized(async () => void (await this.conn.run(sql, params)));
  }

  private rows(sql: string, params?: DuckDBValue[]): Promise<DuckDBValue[][]> {
    return this.serialized(() => this.query(sql, params));
  }

  private async query(sql: string, params?: DuckDBValue[]): Promise<DuckDBValue[][]> {
    return (await this.conn.runAndReadAll(sql, params)).getRows();
  }

  private transaction(work: () => Promise<void>): Promise<void> {
    return inTransaction(this.conn, work);
  }

  private serialized<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(work);
    this.queue = run.catch(() => {});
    return run;
  }
}
