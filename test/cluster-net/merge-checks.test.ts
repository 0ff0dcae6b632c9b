import { beforeAll, expect, test } from "bun:test";
import { rmSync, statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { loadDuckDB } from "../../src/engine/native.ts";
import { makePhotos, MODELS, tempDir, until } from "./cluster-harness.ts";
import { mergedPaths, readRows } from "./helpers-db.ts";

const worker = { host: "h", pid: 1, cores: 2, memoryBytes: 1e9, threads: 1, version: "0.1.0", models: ["test-clip"], pathMap: [] };
let model: ResolvedModel;
let photosDir: string;
let photos: string[];

beforeAll(async () => {
  model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  photosDir = join(tempDir("merge-checks-photos"), "photos");
  photos = await makePhotos(photosDir, 12);
}, 30_000);

/**
 * A worker in this process: leases and indexes batches into its shard as `imgd worker` does, until none is left. It
 * stays registered, so the merge waits for it to leave.
 */
async function work(c: Coordinator, storage: string, pid: number): Promise<string> {
  const id = (await c.register({ protocol: PROTOCOL_VERSION, worker: { ...worker, pid } })).workerId;
  for (;;) {
    const { batch } = await c.lease(id);
    if (!batch) break;
    const r = await runIndex({ roots: [], files: batch.files, indexDir: join(storage, "shards", id), model, batchSize: 8, threads: 1 });
    await c.commit({ workerId: id, batchId: batch.batchId, leaseId: batch.leaseId, indexed: batch.files.length - r.failed, failed: r.failed, batchMs: 10 });
  }
  return id;
}

/** Until the coordinator has checked the shards: merged, or back to indexing. */
async function settle(c: Coordinator): Promise<void> {
  await until(async () => {
    await c.tick();
    return (await c.status()).phase !== "merging";
  }, 10_000, "the merge or a requeue");
}

/** One job: a worker indexes it all, `damage` is done to its shard, then a second worker takes what comes back. */
async function jobWithDamagedShard(damage: (shard: string) => Promise<void>) {
  const storage = join(tempDir("merge-checks"), "storage");
  const events: string[] = [];
  const c = await Coordinator.open({ roots: [photosDir], storage, model: "test-clip", batchFiles: 4, leaseTtlMs: 60_000, onEvent: (e) => events.push(e) });
  try {
    const first = await c.register({ protocol: PROTOCOL_VERSION, worker });
    await c.deregister(first.workerId, "test"); // the id h-1 is taken; work() below registers h-2
    const a = await work(c, storage, 2);
    await damage(join(storage, "shards", a));
    await c.deregister(a, "job complete");
    await settle(c);
    const afterCheck = await c.status();
    const b = await work(c, storage, 3);
    await c.deregister(b, "job complete");
    await settle(c);
    const done = await c.status();
    const ledger = join(storage, "coordinator", "ledger.duckdb");
    return { storage, events, a, b, afterCheck, done, ledger };
  } finally {
    await c.close();
  }
}

test("a shard whose catalog is gone or truncated at merge time: its files go back to the queue, and the index holds every image once", async () => {
  for (const damage of [
    async (shard: string) => rmSync(join(shard, "catalog.duckdb")),
    async (shard: string) => truncateSync(join(shard, "catalog.duckdb"), Math.floor(statSync(join(shard, "catalog.duckdb")).size / 2)),
  ]) {
    const r = await jobWithDamagedShard(damage);
    expect(r.events.find((e) => e.startsWith(`shard of ${r.a}`))).toMatch(
      new RegExp(`^shard of ${r.a} cannot be read \\(.+\\): its 12 files are back in the queue$`),
    );
    expect(r.afterCheck).toMatchObject({ phase: "indexing", done: 0, batches: { queued: 3, leased: 0, committed: 0 } });
    expect(r.done).toMatchObject({ phase: "merged", done: 12 });
    expect(await mergedPaths(r.storage)).toEqual(photos);
    const by = await readRows(r.ledger, "SELECT DISTINCT committed_by FROM batches");
    expect(by).toEqual([[r.b]]);
  }
}, 60_000);

test("a readable shard that lacks files it committed: only their batches are redone, the rest is merged from it", async () => {
  const r = await jobWithDamagedShard(async (shard) => {
    const db = await loadDuckDB().DuckDBInstance.create(join(shard, "catalog.duckdb"));
    const conn = await db.connect();
    await conn.run(`DELETE FROM images WHERE path IN ('${photos[5]}', '${photos[6]}')`);
    conn.closeSync();
    db.closeSync();
  });
  expect(r.events).toContain(
    `shard of ${r.a} at ${join(r.storage, "shards", r.a)} lacks 2 of the 12 files it committed (${photos[5]}, ...): batches 2 (4 files) are back in the queue`,
  );
  expect(r.afterCheck).toMatchObject({ phase: "indexing", done: 8, batches: { queued: 1, leased: 0, committed: 2 } });
  expect(r.done).toMatchObject({ phase: "merged", done: 12 });
  expect(await mergedPaths(r.storage)).toEqual(photos);
  const rows = await readRows(r.ledger, "SELECT id, committed_by FROM batches ORDER BY id");
  expect(rows).toEqual([[1, r.a], [2, r.b], [3, r.a]]);
}, 60_000);
