import { expect, test } from "bun:test";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import { makePhotos, spawnCli, startCoordinatorProc, startWorkerProc, tempDir, TOKEN } from "./cluster-harness.ts";

const worker = { host: "h", pid: 1, cores: 2, memoryBytes: 1e9, threads: 1, version: "0.1.0", models: ["test-clip"], pathMap: [] };

// A full disk itself needs root to make (a small tmpfs); a threshold above what any disk has stands in for it.
test("below its free-space threshold the coordinator leases nothing but still takes commits, and resumes when space returns", async () => {
  const root = tempDir("space");
  await makePhotos(join(root, "photos"), 10);
  const storage = join(root, "storage");
  const opts = { roots: [join(root, "photos")], storage, model: "test-clip", batchFiles: 5, leaseTtlMs: 60_000 };
  const first = await Coordinator.open(opts);
  const id = (await first.register({ protocol: PROTOCOL_VERSION, worker })).workerId;
  const held = (await first.lease(id)).batch!;
  await first.close();

  const events: string[] = [];
  const full = await Coordinator.open({ ...opts, minFreeBytes: Number.MAX_SAFE_INTEGER, onEvent: (e) => events.push(e) });
  try {
    // The batch finished meanwhile is still recorded: refusing it would lose the work.
    expect(await full.commit({ workerId: id, batchId: held.batchId, leaseId: held.leaseId, indexed: 5, failed: 0, batchMs: 10 })).toEqual({
      committed: true,
      duplicate: false,
    });
    const refused = await full.lease(id);
    expect(refused).toMatchObject({ batch: null, done: false, retryMs: 5000 });
    expect(refused.reason).toMatch(new RegExp(`^only [\\d.]+ MB free under ${storage} \\(needs \\d+, --min-free-mb\\): no batch is leased until there is more$`));
    expect((await full.lease(id)).batch).toBeNull();
    expect(events.filter((e) => e.includes("no batch is leased"))).toEqual([refused.reason!]);

    full.opts.minFreeBytes = 0;
    await Bun.sleep(1100);
    expect((await full.lease(id)).batch?.batchId).toBe(2);
    expect(events).toContain(`space under ${storage} again: dispatch resumes`);
  } finally {
    await full.close();
  }
}, 30_000);

test("imgd coordinator --min-free-mb sets the threshold, and a value that is not a whole number of MB is refused", async () => {
  const root = tempDir("space-cli");
  await makePhotos(join(root, "photos"), 4);
  // More than any disk here has: the worker's lease is refused for want of space, and the coordinator says so.
  const { p: coordinator, url } = await startCoordinatorProc([join(root, "photos")], join(root, "storage"), ["--min-free-mb", "1000000000000"]);
  const worker = startWorkerProc(url);
  try {
    const line = await coordinator.waitFor(/no batch is leased until there is more/, 20_000);
    expect(line).toContain(`free under ${join(root, "storage")} (needs 1000000000000, --min-free-mb)`);
  } finally {
    worker.proc.kill("SIGKILL");
    coordinator.proc.kill("SIGKILL");
    await Promise.all([worker.exited, coordinator.exited]);
  }
  const bad = spawnCli(["coordinator", join(root, "photos"), "--storage", join(root, "storage2"), "--token", TOKEN, "--min-free-mb", "lots"]);
  expect(await bad.exited).toBe(2);
  expect(bad.stderr.join("\n")).toContain('--min-free-mb takes a whole number >= 0, got "lots"');
}, 40_000);
