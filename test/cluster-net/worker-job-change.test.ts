import { afterAll, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { startCoordinator, type RunningCoordinator } from "../../src/cluster-net/coordinator-server.ts";
import { makePhotos, MODELS, startWorkerProc, tempDir, TOKEN, until, type Proc } from "./cluster-harness.ts";

const running: RunningCoordinator[] = [];
const procs: Proc[] = [];
afterAll(async () => {
  procs.forEach((p) => p.proc.kill("SIGKILL"));
  for (const r of running) await r.stop().catch(() => {});
});

test("a worker whose coordinator comes back with another job leaves with a message instead of crashing on its old leases", async () => {
  const root = tempDir("job-change");
  await makePhotos(join(root, "photos"), 12);
  const storage = join(root, "storage");
  const open = (port = 0) =>
    startCoordinator({ roots: [join(root, "photos")], storage, model: "test-clip", modelsDir: MODELS, batchFiles: 2, leaseTtlMs: 5000, token: TOKEN, hostname: "127.0.0.1", port });
  const first = await open();
  running.push(first);
  const worker = startWorkerProc(first.url);
  procs.push(worker);
  await until(async () => (await first.coordinator.status()).done >= 2, 30_000, "a committed batch");
  await first.coordinator.control("pause");
  const oldJob = first.coordinator.jobId;
  await first.stop();

  // Started over, as "remove its coordinator/ and shards/ directories to start over" says (the shards left for this test), on the same address.
  rmSync(join(storage, "coordinator"), { recursive: true });
  const second = await open(first.port);
  running.push(second);
  expect(await worker.exited).toBe(1);
  expect(worker.stderr.join("\n")).toContain(
    `imgd: the coordinator at ${first.url} now runs job ${second.coordinator.jobId}, not job ${oldJob} this worker was started for; start the worker again to join it`,
  );
  expect((await second.coordinator.status()).workers.map((w) => w.state)).toEqual(["gone"]);
}, 60_000);
