import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { startCoordinator, type RunningCoordinator } from "../../src/cluster-net/coordinator-server.ts";
import { awaitRegistration } from "../../src/cluster-net/deploy-registration.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import type { DeployRow } from "../../src/cluster-net/ssh-deploy.ts";
import { makePhotos, MODELS, tempDir, TOKEN } from "./cluster-harness.ts";

let running: RunningCoordinator;

beforeAll(async () => {
  const root = tempDir("deploy-registration");
  await makePhotos(join(root, "photos"), 4);
  running = await startCoordinator({
    roots: [join(root, "photos")],
    storage: join(root, "storage"),
    model: "test-clip",
    modelsDir: MODELS,
    batchFiles: 2,
    leaseTtlMs: 30_000,
    token: TOKEN,
    hostname: "127.0.0.1",
  });
});
afterAll(() => running.stop());

const register = (host: string, pid: number) =>
  running.coordinator.register({
    protocol: PROTOCOL_VERSION,
    worker: { host, pid, cores: 2, memoryBytes: 1e9, threads: 1, version: "0.1.0", models: ["test-clip"], pathMap: [] },
  });

const row = (host: string, pid: number): DeployRow => ({
  host,
  connect: "ok",
  storage: "writable",
  binary: "uploaded",
  worker: `started (pid ${pid})`,
  ok: true,
  pid,
  hostname: host,
});

test("a worker that registered and left before deploy looked counts as registered, unless an error stopped it; one never seen fails its row", async () => {
  await register("busy", 101);
  const { workerId } = await register("quick", 102);
  await running.coordinator.deregister(workerId, "job complete");
  const broken = await register("broken", 104);
  await running.coordinator.deregister(broken.workerId, "stopped by an error: EACCES: permission denied, mkdir '/mnt/shared/shards/broken-3'");
  const rows = [row("busy", 101), row("quick", 102), row("silent", 103), row("broken", 104)];
  expect(await awaitRegistration(rows, running.url, TOKEN, 600)).toBeNull();
  expect(rows.map((r) => [r.ok, r.worker])).toEqual([
    [true, "started (pid 101), registered as busy-1"],
    [true, `started (pid 102), registered as ${workerId}, since left after 0 files`],
    [false, "started (pid 103), not registered after 0.6 s: see imgd deploy logs silent"],
    [false, `started (pid 104), registered as ${broken.workerId}, then left: stopped by an error: EACCES: permission denied, mkdir '/mnt/shared/shards/broken-3'`],
  ]);
});
