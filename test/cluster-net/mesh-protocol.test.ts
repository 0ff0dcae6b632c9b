import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { startCoordinator, type RunningCoordinator } from "../../src/cluster-net/coordinator-server.ts";
import { MeshClient, MeshRefusal } from "../../src/cluster-net/mesh-client.ts";
import { CommitReply, LeaseReply, PROTOCOL_VERSION, RegisterReply } from "../../src/cluster-net/protocol.ts";
import { z } from "zod";
import { makePhotos, MODELS, startWorkerProc, tempDir, TOKEN } from "./cluster-harness.ts";

let running: RunningCoordinator;
let events: string[] = [];
const worker = {
  host: "testhost",
  pid: 1,
  cores: 2,
  memoryBytes: 1e9,
  threads: 1,
  version: "0.1.0",
  models: ["test-clip"],
  pathMap: [],
};

beforeAll(async () => {
  const root = tempDir("mesh");
  await makePhotos(join(root, "photos"), 12);
  running = await startCoordinator({
    roots: [join(root, "photos")],
    storage: join(root, "storage"),
    model: "test-clip",
    modelsDir: MODELS,
    batchFiles: 5,
    leaseTtlMs: 400,
    token: TOKEN,
    hostname: "127.0.0.1",
    onEvent: (e) => events.push(e),
  });
});
afterAll(() => running.stop());

test("a request without the token or with a wrong one is refused with 401", async () => {
  expect((await fetch(`${running.url}/v1/status`)).status).toBe(401);
  const wrong = await fetch(`${running.url}/v1/status`, { headers: { authorization: "Bearer nope" } });
  expect(wrong.status).toBe(401);
  expect(await wrong.json()).toEqual({ error: "missing or wrong mesh token" });
  const right = await fetch(`${running.url}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } });
  expect(right.status).toBe(200);
});

test("a worker process with a wrong token exits non-zero and says why", async () => {
  const p = startWorkerProc(running.url, ["--token", "wrong-token"]);
  expect(await p.exited).toBe(1);
  expect(p.stderr.join("\n")).toContain("missing or wrong mesh token");
});

test("a worker of another protocol version is refused with a message naming both versions", async () => {
  const client = new MeshClient(running.url, TOKEN);
  const err = await client.post("/v1/register", { protocol: PROTOCOL_VERSION + 1, worker: { future: true } }, RegisterReply).catch((e) => e);
  expect(err).toBeInstanceOf(MeshRefusal);
  expect(err.status).toBe(426);
  expect(err.message).toContain(`protocol version ${PROTOCOL_VERSION + 1} is not supported`);
  expect(err.message).toContain(`speaks ${PROTOCOL_VERSION}`);
});

test("a worker without the job's model is refused", async () => {
  const client = new MeshClient(running.url, TOKEN);
  const err = await client
    .post("/v1/register", { protocol: PROTOCOL_VERSION, worker: { ...worker, models: ["other"] } }, RegisterReply)
    .catch((e) => e);
  expect(err.status).toBe(409);
  expect(err.message).toContain("does not have model test-clip");
});

test("an expired lease returns its batch to the queue, and a batch committed twice counts once", async () => {
  const client = new MeshClient(running.url, TOKEN);
  const a = await client.post("/v1/register", { protocol: PROTOCOL_VERSION, worker }, RegisterReply);
  const b = await client.post("/v1/register", { protocol: PROTOCOL_VERSION, worker: { ...worker, pid: 2 } }, RegisterReply);
  const first = await client.post("/v1/lease", { workerId: a.workerId }, LeaseReply);
  expect(first.batch?.batchId).toBe(1);
  expect(first.batch?.files).toHaveLength(5);

  // No heartbeat from a: after the TTL the batch is leased to b.
  await Bun.sleep(900);
  const again = await client.post("/v1/lease", { workerId: b.workerId }, LeaseReply);
  expect(again.batch?.batchId).toBe(1);
  expect(events.some((e) => e.includes("batch 1 back in the queue"))).toBe(true);
  const status1 = await running.coordinator.status();
  expect(status1.workers.find((w) => w.id === a.workerId)?.state).toBe("lost");

  const commit = (workerId: string, leaseId: string) =>
    client.post("/v1/commit", { workerId, batchId: 1, leaseId, indexed: 5, failed: 0, batchMs: 10 }, CommitReply);
  // The late holder's commit still wins (its shard has the rows); the re-leased holder's is a duplicate.
  expect(await commit(a.workerId, first.batch!.leaseId)).toEqual({ committed: true, duplicate: false });
  expect(await commit(a.workerId, first.batch!.leaseId)).toEqual({ committed: true, duplicate: true });
  expect(await commit(b.workerId, again.batch!.leaseId)).toEqual({ committed: true, duplicate: true });
  const status2 = await running.coordinator.status();
  expect(status2.done).toBe(5);
  expect(status2.batches.committed).toBe(1);

  // A lease that was never granted is refused.
  const bogus = await commit(b.workerId, "not-a-lease").catch((e) => e);
  expect(bogus.status).toBe(409);
});

test("heartbeats keep a lease alive past its TTL", async () => {
  const client = new MeshClient(running.url, TOKEN);
  const w = await client.post("/v1/register", { protocol: PROTOCOL_VERSION, worker: { ...worker, pid: 3 } }, RegisterReply);
  const lease = await client.post("/v1/lease", { workerId: w.workerId }, LeaseReply);
  expect(lease.batch).not.toBeNull();
  const stats = { rssBytes: 1, inFlight: 5, rateNow: 1, batchSize: 8, errors: 0 };
  for (let i = 0; i < 8; i++) {
    await Bun.sleep(120);
    const hb = await client.post("/v1/heartbeat", { workerId: w.workerId, stats }, z.any());
    expect(hb.renewed).toBe(1);
  }
  const status = await running.coordinator.status();
  expect(status.workers.find((x) => x.id === w.workerId)).toMatchObject({ state: "working", inFlight: 5, batchSize: 8 });
});
