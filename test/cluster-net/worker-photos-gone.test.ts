// The photo share unmounted from under a working worker leaves its empty mount point: every file of the next batch
// fails. The worker must stop rather than commit those failures, and the job completes with every image indexed.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync, renameSync, symlinkSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus, makePhotos, startCoordinatorProc, startWorkerProc, tempDir, until, type Proc } from "./cluster-harness.ts";
import { readRows } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("a worker whose photos vanish mid-job (an empty mount point left) stops instead of committing failures", async () => {
  const root = tempDir("photos-gone");
  const photos = join(root, "photos");
  const all = await makePhotos(photos, 60, 160);
  const storage = join(root, "storage");
  const { p: coordinator, url } = await startCoordinatorProc([photos], storage, ["--batch", "5", "--lease-ttl", "30"]);
  procs.push(coordinator);
  // This host reaches the photos through a mount point: a symlink here, swapped for an empty directory to unmount.
  const mount = join(root, "mnt");
  symlinkSync(photos, mount);
  const worker = startWorkerProc(url, ["--path-map", `${photos}=${mount}`]);
  procs.push(worker);
  await until(async () => (await fetchStatus(url)).done >= 10, 30_000, "some batches committed");
  renameSync(mount, join(root, "mnt-was"));
  mkdirSync(mount);

  expect(await worker.exited).toBe(1);
  expect(worker.stderr.join("\n")).toContain(`imgd: none of 4 photos the coordinator has under ${photos} is here under ${mount}`);
  // It left at once: its leases are back in the queue, not waiting 30 s to expire.
  await until(async () => (await fetchStatus(url)).batches.leased === 0, 5_000, "its leases handed back");
  const done = (await fetchStatus(url)).done;
  expect(done).toBeLessThan(60);

  const rescuer = startWorkerProc(url);
  procs.push(rescuer);
  expect(await rescuer.exited).toBe(0);
  expect(await coordinator.exited).toBe(0);
  const rows = await readRows(join(storage, "index", "catalog.duckdb"), "SELECT path, status FROM images ORDER BY path");
  expect(rows).toEqual(all.map((p) => [p, "indexed"]));
}, 60_000);
