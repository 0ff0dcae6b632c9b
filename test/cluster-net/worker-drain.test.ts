import { afterAll, expect, test } from "bun:test";
import { renameSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus, makePhotos, startCoordinatorProc, startWorkerProc, tempDir, until, type Proc } from "./cluster-harness.ts";
import { readRows } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("SIGTERM drains a worker (current batch committed, then it leaves), and --path-map reads local paths but stores canonical ones", async () => {
  const root = tempDir("drain");
  const canon = join(root, "canon");
  const photos = await makePhotos(canon, 80, 160);
  const storage = join(root, "storage");
  const { p: coordinator, url } = await startCoordinatorProc([canon], storage, ["--batch", "5", "--lease-ttl", "5", "--serve"]);
  procs.push(coordinator);
  // From here on the photos exist only under the path this host mounts them at.
  const local = join(root, "mnt", "photos");
  renameSync(canon, join(root, "mnt-tmp"));
  await Bun.$`mkdir -p ${join(root, "mnt")} && mv ${join(root, "mnt-tmp")} ${local}`;
  const map = ["--path-map", `${canon}=${local}`];
  const a = startWorkerProc(url, map);
  procs.push(a);
  const aId = (await a.waitFor(/registered as/)).match(/registered as (\S+)/)![1]!;
  await until(async () => {
    const w = (await fetchStatus(url)).workers.find((x) => x.id === aId);
    return w && w.done >= 10 && w.inFlight > 0;
  }, 30_000, "a mid-batch");
  a.proc.kill("SIGTERM");
  expect(await a.exited).toBe(0);
  expect(a.stderr.join("\n")).toContain("draining: finishing the current batch, then leaving");
  const summary = JSON.parse(a.stdout.find((l) => l.includes("worker-summary"))!);
  expect(summary.reason).toBe("drained");
  // A worker that loaded a model and indexed images has held more than a bare runtime's few tens of MB.
  expect(summary.peakRssBytes).toBeGreaterThan(64 * 2 ** 20);
  const afterDrain = await fetchStatus(url);
  const row = afterDrain.workers.find((w) => w.id === aId)!;
  expect(row.state).toBe("gone");
  expect(row.inFlight).toBe(0);
  // Everything it reported is committed; nothing it held is stuck in a lease.
  expect(row.done).toBe(summary.files);
  expect(afterDrain.batches.leased).toBe(0);

  const b = startWorkerProc(url, map);
  procs.push(b);
  expect(await b.exited).toBe(0);
  await until(async () => (await fetchStatus(url)).phase === "merged", 30_000, "merged");
  coordinator.proc.kill("SIGTERM");
  await coordinator.exited;

  const rows = await readRows(join(storage, "index", "catalog.duckdb"), "SELECT path, status FROM images ORDER BY path");
  expect(rows.map((r) => r[0])).toEqual(photos);
  expect(rows.every((r) => r[1] === "indexed")).toBe(true);
}, 90_000);
