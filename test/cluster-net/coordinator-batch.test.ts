import { expect, test } from "bun:test";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import { makePhotos, tempDir } from "./cluster-harness.ts";

const worker = { host: "h", pid: 1, cores: 2, memoryBytes: 1e9, threads: 1, version: "0.1.0", models: ["test-clip"], pathMap: [] };

test("a restart with another --batch re-splits the batches never leased; leased ones keep their files; none is lost or doubled", async () => {
  const root = tempDir("rebatch");
  const photos = await makePhotos(join(root, "photos"), 23);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", leaseTtlMs: 60_000 };
  const first = await Coordinator.open({ ...opts, batchFiles: 5 });
  const a = (await first.register({ protocol: PROTOCOL_VERSION, worker })).workerId;
  const b = (await first.register({ protocol: PROTOCOL_VERSION, worker: { ...worker, pid: 2 } })).workerId;
  const held = (await first.lease(a)).batch!;
  expect((await first.lease(b)).batch!.batchId).toBe(2);
  await first.deregister(b, "test"); // batch 2 is queued again, but was leased once
  await first.close();

  const events: string[] = [];
  const second = await Coordinator.open({ ...opts, batchFiles: 2, onEvent: (e) => events.push(e) });
  expect(events).toContain("--batch 2: the files not yet leased are now 7 batches of up to 2 (were 5); batches leased before keep their size");
  await second.close();
  // Without --batch, a resumed job keeps the size it has.
  const third = await Coordinator.open({ ...opts, onEvent: (e) => events.push(e) });
  expect(events.filter((e) => e.startsWith("--batch"))).toHaveLength(1);

  const sizes: number[] = [];
  const leased = [...held.files.map((f) => f.path)];
  for (;;) {
    const { batch } = await third.lease(a);
    if (!batch) break;
    sizes.push(batch.files.length);
    leased.push(...batch.files.map((f) => f.path));
    await third.commit({ workerId: a, batchId: batch.batchId, leaseId: batch.leaseId, indexed: batch.files.length, failed: 0, batchMs: 10 });
  }
  await third.commit({ workerId: a, batchId: held.batchId, leaseId: held.leaseId, indexed: 5, failed: 0, batchMs: 10 });
  expect(held.files).toHaveLength(5);
  expect(sizes).toEqual([5, 2, 2, 2, 2, 2, 2, 1]);
  expect(leased.sort()).toEqual(photos);
  expect((await third.status()).done).toBe(23);
  await third.close();
}, 30_000);

test("a job paused when its coordinator stopped is dispatched again by the next one, which says so", async () => {
  const root = tempDir("paused");
  await makePhotos(join(root, "photos"), 6);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", batchFiles: 3, leaseTtlMs: 60_000 };
  const first = await Coordinator.open(opts);
  const id = (await first.register({ protocol: PROTOCOL_VERSION, worker })).workerId;
  await first.control("pause");
  expect(await first.lease(id)).toMatchObject({ batch: null, reason: "dispatch paused" });
  await first.close();

  const events: string[] = [];
  const second = await Coordinator.open({ ...opts, onEvent: (e) => events.push(e) });
  expect(events).toContain("dispatch was paused when the coordinator stopped: it resumes");
  expect((await second.status()).paused).toBe(false);
  expect((await second.lease(id)).batch?.files).toHaveLength(3);
  await second.close();
}, 30_000);
