import { afterAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, readdirSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus, makePhotos, startCoordinatorProc, startWorkerProc, tempDir, until, type Proc } from "./cluster-harness.ts";
import { mergedPaths, readRows } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("a coordinator SIGKILLed mid-job resumes on restart without redoing committed batches, with the same result", async () => {
  const root = tempDir("restart");
  const photos = await makePhotos(join(root, "photos"), 150, 160);
  const storage = join(root, "storage");
  const args = ["--batch", "5", "--lease-ttl", "2"];
  const first = await startCoordinatorProc([join(root, "photos")], storage, args);
  procs.push(first.p);
  const port = new URL(first.url).port;
  const workers = [startWorkerProc(first.url), startWorkerProc(first.url)];
  procs.push(...workers);

  const before = await until(async () => {
    const s = await fetchStatus(first.url);
    return s.done >= 40 && s.done < 150 ? s : null;
  }, 30_000, "40 files committed");
  first.p.proc.kill("SIGKILL");
  await first.p.exited;
  const killedAt = Date.now();
  await Bun.sleep(300);

  const second = await startCoordinatorProc([join(root, "photos")], storage, [...args, "--port", port]);
  procs.push(second.p);
  const resumed = await second.p.waitFor(/resumed job/);
  const already = Number(resumed.match(/(\d+)\/150 files already committed/)![1]);
  expect(already).toBeGreaterThanOrEqual(before.done);
  expect(already).toBeLessThan(150);

  // Both workers ride out the restart and finish the job against the new process.
  expect(await second.p.exited).toBe(0);
  for (const w of workers) expect(await w.exited).toBe(0);
  expect(workers.some((w) => w.stderr.some((l) => l.includes("unreachable")))).toBe(true);

  expect(await mergedPaths(storage)).toEqual(photos);
  // Every batch was committed exactly once, and batches committed before the kill were never leased again.
  const ledger = join(storage, "coordinator", "ledger.duckdb");
  const [[committed, total]] = (await readRows(ledger, "SELECT count(*) FILTER (state = 'committed'), count(*) FROM batches")) as [bigint, bigint][];
  expect(Number(committed)).toBe(30);
  expect(Number(total)).toBe(30);
  const released = await readRows(
    ledger,
    `SELECT count(*) FROM leases l JOIN batches b ON b.id = l.batch_id WHERE b.committed_ms < ${killedAt} AND l.leased_ms > ${killedAt}`,
  );
  expect(Number(released[0]![0])).toBe(0);
  const jobs = await readRows(ledger, "SELECT count(*) FROM job");
  expect(Number(jobs[0]![0])).toBe(1);
}, 90_000);

test("a coordinator killed while merging merges on restart, and removes what the stopped merge left beside the index", async () => {
  const root = tempDir("restart-merge");
  const photos = await makePhotos(join(root, "photos"), 10);
  const storage = join(root, "storage");
  const first = await startCoordinatorProc([join(root, "photos")], storage, ["--batch", "5", "--lease-ttl", "2"]);
  procs.push(first.p);
  const worker = startWorkerProc(first.url);
  procs.push(worker);
  // Killed as the merge phase begins, with the worker (its shard checkpointed batch by batch) killed too.
  await first.p.waitFor(/all 10 files committed/);
  first.p.proc.kill("SIGKILL");
  worker.proc.kill("SIGKILL");
  await Promise.all([first.p.exited, worker.exited]);
  // What a merge SIGKILLed part-way leaves: the index it was building, or the one it was replacing.
  for (const left of [`index.merging-${first.p.proc.pid}`, `index.old-${first.p.proc.pid}`]) {
    mkdirSync(join(storage, left));
    writeFileSync(join(storage, left, "catalog.duckdb"), "half-written");
  }

  const second = await startCoordinatorProc([join(root, "photos")], storage, ["--batch", "5", "--lease-ttl", "2"]);
  procs.push(second.p);
  expect(await second.p.exited).toBe(0);
  expect(second.p.stderr.filter((l) => l.includes("left by a merge that was stopped part-way"))).toHaveLength(2);
  expect(readdirSync(storage).sort()).toEqual(["coordinator", "index", "shards"]);
  expect(await mergedPaths(storage)).toEqual(photos);
}, 60_000);

test("a coordinator restarted mid-job takes the roots as they are now: new files join, deleted ones leave, a replaced one is redone", async () => {
  const root = tempDir("restart-rescan");
  const photos = await makePhotos(join(root, "photos"), 60, 160);
  const storage = join(root, "storage");
  const args = ["--batch", "5", "--lease-ttl", "2"];
  const first = await startCoordinatorProc([join(root, "photos")], storage, args);
  procs.push(first.p);
  const worker = startWorkerProc(first.url);
  procs.push(worker);
  await until(async () => {
    const s = await fetchStatus(first.url);
    return s.done >= 15 && s.done < 50;
  }, 30_000, "15 files committed");
  first.p.proc.kill("SIGKILL");
  await first.p.exited;

  // Batches go out in path order: the first photos are committed by now, the last ones not yet leased.
  for (const gone of [photos[0]!, photos[1]!, photos[58]!, photos[59]!]) rmSync(gone);
  copyFileSync(photos[40]!, photos[2]!);
  const added = await makePhotos(join(root, "photos", "new"), 4, 100);
  const second = await startCoordinatorProc([join(root, "photos")], storage, [...args, "--port", new URL(first.url).port]);
  procs.push(second.p);
  expect(await second.p.waitFor(/roots scanned again/)).toBe(
    "[coordinator] roots scanned again: 4 new files, 1 changed, 4 gone since the job was made",
  );
  expect(await second.p.exited).toBe(0);
  expect(await worker.exited).toBe(0);

  const expected = [...photos.slice(2, 58), ...added].sort();
  const rows = await readRows(join(storage, "index", "catalog.duckdb"), "SELECT path, status, size FROM images ORDER BY path");
  expect(rows.map((r) => [r[0], r[1]])).toEqual(expected.map((p) => [p, "indexed"]));
  // The replaced photo is indexed as it is now, not as the worker first found it.
  expect(Number(rows.find((r) => r[0] === photos[2])![2])).toBe(statSync(photos[40]!).size);
}, 60_000);
