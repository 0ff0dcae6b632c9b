import { expect, test } from "bun:test";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import { makePhotos, tempDir } from "./cluster-harness.ts";

const worker = { host: "h", pid: 1, cores: 2, memoryBytes: 1e9, threads: 1, version: "0.1.0", models: ["test-clip"], pathMap: [] };

test("a worker's img/s is its own batch timing, also for the commits a restarted coordinator receives first", async () => {
  const root = tempDir("rates");
  await makePhotos(join(root, "photos"), 20);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", batchFiles: 5, leaseTtlMs: 60_000 };
  const indexOne = async (c: Coordinator, workerId: string, batchMs: number) => {
    const { batch } = await c.lease(workerId);
    await c.commit({ workerId, batchId: batch!.batchId, leaseId: batch!.leaseId, indexed: 4, failed: 1, batchMs });
  };
  const first = await Coordinator.open(opts);
  const id = (await first.register({ protocol: PROTOCOL_VERSION, worker })).workerId;
  await indexOne(first, id, 1000);
  await indexOne(first, id, 500);
  expect((await first.status()).workers[0]).toMatchObject({ rateNow: 10, rateAverage: 10 / 1.5 });
  await first.heartbeat(id, { rssBytes: 1, inFlight: 0, rateNow: 10, batchSize: 8, errors: 1 });
  await first.close();

  // A restart: the worker's last reported rate until it commits, then that commit's (it had finished while the
  // coordinator was down, and arrives within a millisecond of the new process's first status).
  const second = await Coordinator.open(opts);
  expect((await second.status()).workers[0]).toMatchObject({ rateNow: 10, rateAverage: 10 / 1.5 });
  await indexOne(second, id, 2500);
  expect((await second.status()).workers[0]).toMatchObject({ rateNow: 2, rateAverage: 15 / 4 });
  await second.close();
}, 30_000);

test("right after a restart, the batches finished while the coordinator was down count as done but not in the cluster's img/s", async () => {
  const root = tempDir("restart-rate");
  await makePhotos(join(root, "photos"), 40);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", batchFiles: 5, leaseTtlMs: 60_000 };
  const commit = (c: Coordinator, workerId: string, batch: { batchId: number; leaseId: string }) =>
    c.commit({ workerId, batchId: batch.batchId, leaseId: batch.leaseId, indexed: 5, failed: 0, batchMs: 400 });
  const first = await Coordinator.open(opts);
  const a = (await first.register({ protocol: PROTOCOL_VERSION, worker })).workerId;
  const b = (await first.register({ protocol: PROTOCOL_VERSION, worker: { ...worker, pid: 2 } })).workerId;
  await commit(first, a, (await first.lease(a)).batch!);
  const heldByA = (await first.lease(a)).batch!;
  const heldByB = (await first.lease(b)).batch!;
  await first.close();

  // Both workers finished their batch during the outage: the commits arrive within milliseconds of the new process.
  const second = await Coordinator.open(opts);
  await commit(second, a, heldByA);
  await commit(second, b, heldByB);
  const burst = await second.status();
  expect(burst.done).toBe(15);
  expect(burst.rate).toBe(0);
  expect(burst.averageRate).toBe(0);
  expect(burst.etaMs).toBeNull();

  // Work this process hands out is timed as before; what remains for the ETA excludes the burst's 10 files.
  await commit(second, a, (await second.lease(a)).batch!);
  await Bun.sleep(400);
  await commit(second, b, (await second.lease(b)).batch!);
  const s = await second.status();
  expect(s.done).toBe(25);
  expect(s.rate).toBeGreaterThan(0);
  expect(s.rate).toBeLessThanOrEqual(5 / 0.4);
  expect(s.etaMs!).toBeCloseTo((15 / s.rate) * 1000, -1);
  await second.close();
}, 30_000);

/** A coordinator over `photos` files in batches of 5 and two workers, each through one batch: fast at 50 img/s, slow at 2. */
async function fastAndSlow(name: string, photos: number) {
  const root = tempDir(name);
  await makePhotos(join(root, "photos"), photos);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", batchFiles: 5, leaseTtlMs: 60_000 };
  const c = await Coordinator.open(opts);
  const fast = (await c.register({ protocol: PROTOCOL_VERSION, worker })).workerId;
  const slow = (await c.register({ protocol: PROTOCOL_VERSION, worker: { ...worker, pid: 2 } })).workerId;
  const commit = (workerId: string, batch: { batchId: number; leaseId: string }, batchMs: number) =>
    c.commit({ workerId, batchId: batch.batchId, leaseId: batch.leaseId, indexed: 5, failed: 0, batchMs });
  await commit(fast, (await c.lease(fast)).batch!, 100); // 50 img/s
  await commit(slow, (await c.lease(slow)).batch!, 2500); // 2 img/s
  return { c, fast, slow };
}

test("with nothing left in the queue, the ETA is the slowest worker's time for the files it holds, and a worker holding a batch stays working", async () => {
  const { c, fast, slow } = await fastAndSlow("tail-eta", 20);
  // The slow worker takes the last two batches (one in hand, one asked for ahead); the fast one finds none left.
  expect((await c.lease(slow)).batch).not.toBeNull();
  expect((await c.lease(slow)).batch).not.toBeNull();
  expect((await c.lease(fast)).batch).toBeNull();
  expect((await c.lease(slow)).batch).toBeNull();

  const s = await c.status();
  expect(s.workers.map((w) => [w.state, w.inFlight])).toEqual([["idle", 0], ["working", 10]]);
  // 10 files at 2 img/s: about 5 s, not the 10 files at the cluster's rate of both.
  expect(s.etaMs!).toBeGreaterThan(4000);
  expect(s.etaMs!).toBeLessThanOrEqual(5000);
  await c.close();
}, 30_000);

test("a batch asked for ahead is refused to a slow worker while faster ones would empty the queue before it is free, and given to a fast one", async () => {
  const { c, fast, slow } = await fastAndSlow("ahead", 40);

  // Each starts on a batch; 5 stay queued. The slow one would start a second only in 2.5 s: the fast one does all 5 by then.
  expect((await c.lease(slow)).batch).not.toBeNull();
  expect((await c.lease(fast)).batch).not.toBeNull();
  const refused = await c.lease(slow, true);
  expect(refused).toMatchObject({ batch: null, done: false, retryMs: 0 });
  expect(refused.reason).toContain("faster workers");
  expect((await c.lease(fast, true)).batch).not.toBeNull();
  // Asked for when free, a batch is given whatever the worker's speed.
  expect((await c.lease(slow)).batch).not.toBeNull();
  expect((await c.status()).batches).toEqual({ queued: 2, leased: 4, committed: 2 });
  await c.close();
}, 30_000);
