// A misconfigured host must be told so, not allowed to "finish" work that is lost or all failed.
import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import { jobMarkerPath } from "../../src/cluster-net/storage-layout.ts";
import { fetchStatus, makePhotos, spawnCli, startCoordinatorProc, startWorkerProc, tempDir, until, type Proc } from "./cluster-harness.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("a worker whose --storage is not the coordinator's, that cannot see the photos or finds none of them, or whose path maps overlap is refused and leaves", async () => {
  const root = tempDir("checks");
  const photos = join(root, "photos");
  await makePhotos(photos, 6);
  const storage = join(root, "storage");
  const { p: coordinator, url } = await startCoordinatorProc([photos], storage, ["--batch", "5", "--serve"]);
  procs.push(coordinator);
  expect(existsSync(jobMarkerPath(storage))).toBe(true);

  const elsewhere = join(root, "local-disk");
  mkdirSync(elsewhere);
  const wrongStorage = startWorkerProc(url, ["--storage", elsewhere]);
  procs.push(wrongStorage);
  expect(await wrongStorage.exited).toBe(1);
  expect(wrongStorage.stderr.join("\n")).toContain(`${elsewhere} is not the coordinator's storage`);

  const blind = startWorkerProc(url, ["--path-map", `${photos}=/nonexistent/photos`]);
  procs.push(blind);
  expect(await blind.exited).toBe(1);
  expect(blind.stderr.join("\n")).toContain("this host cannot see /nonexistent/photos");

  // Pairs that nest differently: the coordinator's a/ would be read in b/, and b/'s files stored as a/'s.
  mkdirSync(join(photos, "a"));
  mkdirSync(join(photos, "b"));
  symlinkSync(photos, join(root, "link"));
  const overlapping = startWorkerProc(url, ["--path-map", `${photos}=${join(root, "link")}`, "--path-map", `${join(photos, "a")}=${join(root, "link", "b")}`]);
  procs.push(overlapping);
  expect(await overlapping.exited).toBe(1);
  expect(overlapping.stderr.join("\n")).toContain(
    `imgd: --path-map does not map the coordinator's ${join(photos, "b")} back to itself: it is read here at ${join(root, "link", "b")}, which maps back to ${join(photos, "a")}.`,
  );

  // The photos' mount point without the share mounted on it: there, but empty. Every file would fail.
  const mountPoint = join(root, "mnt-photos");
  mkdirSync(mountPoint);
  const unmounted = startWorkerProc(url, ["--path-map", `${photos}=${mountPoint}`]);
  procs.push(unmounted);
  expect(await unmounted.exited).toBe(1);
  expect(unmounted.stderr.join("\n")).toContain(
    `imgd: none of 4 photos the coordinator has under ${photos} is here under ${mountPoint} (as --path-map puts them), e.g. ${mountPoint}/img-0000.jpg:`,
  );

  const status = await fetchStatus(url);
  expect(status.workers.map((w) => w.state)).toEqual(["gone", "gone", "gone", "gone"]);
  expect(status.batches.committed).toBe(0);
  expect(status.batches.leased).toBe(0);
}, 60_000);

test("a worker waiting for an unreachable coordinator says why once, stops on SIGTERM; a malformed URL is a usage error", async () => {
  const waiting = startWorkerProc("http://127.0.0.1:1", ["--no-fetch-models"]);
  procs.push(waiting);
  await waiting.waitFor(/retrying in/);
  // Retries at 0.25, 0.5, 1 and 2 s: one line for the outage, in a few words, without Bun's advice to developers.
  await Bun.sleep(2500);
  const retries = waiting.stderr.filter((l) => l.includes("retrying in"));
  expect(retries).toEqual(["[worker] coordinator http://127.0.0.1:1 unreachable: connection refused; retrying in 0.3 s"]);
  const t0 = Date.now();
  waiting.proc.kill("SIGTERM");
  expect(await waiting.exited).not.toBe(0);
  expect(Date.now() - t0).toBeLessThan(3000);

  const bad = spawnCli(["worker", "--coordinator", "notaurl", "--token", "x".repeat(16)]);
  expect(await bad.exited).toBe(2);
  expect(bad.stderr.join("\n")).toContain("--coordinator must be an http:// or https:// URL");
}, 30_000);

test("a committed shard missing from the storage puts its files back in the queue instead of merging without them", async () => {
  const root = tempDir("lost-shard");
  const photos = join(root, "photos");
  await makePhotos(photos, 6);
  const events: string[] = [];
  const coordinator = await Coordinator.open({
    roots: [photos],
    storage: join(root, "storage"),
    model: "test-clip",
    batchFiles: 5,
    leaseTtlMs: 10_000,
    onEvent: (e) => events.push(e),
  });
  try {
    // A peer that commits batches but writes its shard somewhere else (an old worker without the storage check).
    const info = { host: "h", pid: 1, cores: 1, memoryBytes: 1, threads: 1, version: "x", models: ["test-clip"], pathMap: [] };
    const { workerId } = await coordinator.register({ protocol: PROTOCOL_VERSION, worker: info });
    for (;;) {
      const lease = await coordinator.lease(workerId);
      if (!lease.batch) break;
      await coordinator.commit({ workerId, batchId: lease.batch.batchId, leaseId: lease.batch.leaseId, indexed: lease.batch.files.length, failed: 0, batchMs: 1 });
    }
    await coordinator.deregister(workerId, "done");
    await until(async () => events.some((e) => e.includes("back in the queue; start a worker")), 10_000, "the requeue");
    expect(events.find((e) => e.startsWith("shard of"))).toContain("its 6 files are back in the queue");
    expect((await coordinator.ledger.counts()).queued).toBe(2);
    expect(events.some((e) => e.startsWith("merged"))).toBe(false);
  } finally {
    await coordinator.close();
  }
}, 30_000);

test("a coordinator refuses a mesh token too short to guess at", async () => {
  const root = tempDir("short-token");
  const p = spawnCli(["coordinator", root, "--storage", join(root, "storage"), "--token", "x", "--port", "0"]);
  expect(await p.exited).toBe(2);
  expect(p.stderr.join("\n")).toContain("the mesh token must be at least 16 characters");
});
