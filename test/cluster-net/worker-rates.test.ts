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
