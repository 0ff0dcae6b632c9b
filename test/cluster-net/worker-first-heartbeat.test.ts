import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { startCoordinator, type RunningCoordinator } from "../../src/cluster-net/coordinator-server.ts";
import { makePhotos, MODELS, startWorkerProc, tempDir, TOKEN, until, type Proc } from "./cluster-harness.ts";

let running: RunningCoordinator;
const procs: Proc[] = [];
afterAll(async () => {
  procs.forEach((p) => p.proc.kill("SIGKILL"));
  await running?.stop();
});

test("a worker's memory and batch size show as soon as it registers, not one heartbeat period later", async () => {
  const root = tempDir("first-beat");
  await makePhotos(join(root, "photos"), 4);
  // A 30 s lease: heartbeats every 10 s.
  running = await startCoordinator({ roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", modelsDir: MODELS, batchFiles: 2, leaseTtlMs: 30_000, token: TOKEN, hostname: "127.0.0.1" });
  await running.coordinator.control("pause");
  procs.push(startWorkerProc(running.url, ["--batch", "4"]));
  const row = await until(async () => (await running.coordinator.status()).workers.find((w) => w.rssBytes > 0), 5_000, "the worker's memory in its row");
  expect(row.rssBytes).toBeGreaterThan(10 * 2 ** 20);
  expect(row.batchSize).toBe(4);
}, 30_000);
