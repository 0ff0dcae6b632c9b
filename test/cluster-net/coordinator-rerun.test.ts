import { afterAll, expect, test } from "bun:test";
import { copyFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { makePhotos, startCoordinatorProc, startWorkerProc, tempDir, type Proc } from "./cluster-harness.ts";
import { mergedPaths, readRows } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("a merged job run again leases only the files added or replaced since, and merges again without the deleted ones", async () => {
  const root = tempDir("rerun");
  const dir = join(root, "photos");
  const photos = await makePhotos(dir, 20, 100);
  // Two that fail: one is deleted before the second run, the other replaced by a photo.
  const broken = [join(dir, "broken-1.jpg"), join(dir, "broken-2.jpg")];
  for (const path of broken) writeFileSync(path, "not a jpeg");
  const storage = join(root, "storage");
  const args = ["--batch", "5", "--lease-ttl", "2"];
  const first = await startCoordinatorProc([dir], storage, args);
  procs.push(first.p);
  const w1 = startWorkerProc(first.url);
  procs.push(w1);
  expect(await first.p.exited).toBe(0);
  expect(await w1.exited).toBe(0);
  expect(await mergedPaths(storage)).toEqual([...broken, ...photos].sort());
  expect(first.p.stderr.at(-1)).toMatch(/^\[cluster\] 22\/22 100\.0% .* failed 2 \|/);
  const ledger = join(storage, "coordinator", "ledger.duckdb");
  const leasesBefore = Number((await readRows(ledger, "SELECT count(*) FROM leases"))[0]![0]);

  // Two deleted, one replaced by another photo (another size), three new.
  rmSync(photos[3]!);
  rmSync(photos[17]!);
  copyFileSync(photos[12]!, photos[5]!);
  rmSync(broken[0]!);
  copyFileSync(photos[0]!, broken[1]!);
  const added = await makePhotos(join(dir, "later"), 3, 80);
  const second = await startCoordinatorProc([dir], storage, args);
  procs.push(second.p);
  expect(await second.p.waitFor(/roots scanned again/)).toBe(
    "[coordinator] roots scanned again: 3 new files, 2 changed, 3 gone since the job was made",
  );
  const w2 = startWorkerProc(second.url);
  procs.push(w2);
  expect(await second.p.exited).toBe(0);
  expect(await w2.exited).toBe(0);

  const expected = [broken[1]!, ...photos.filter((_, i) => i !== 3 && i !== 17), ...added].sort();
  const rows = await readRows(join(storage, "index", "catalog.duckdb"), "SELECT path, status, size FROM images ORDER BY path");
  expect(rows.map((r) => [r[0], r[1]])).toEqual(expected.map((p) => [p, "indexed"]));
  expect(Number(rows.find((r) => r[0] === photos[5])![2])).toBe(statSync(photos[12]!).size);
  // Only the five new or replaced files went out again: the unchanged ones were not embedded a second time.
  const leased = await readRows(
    ledger,
    `SELECT count(*), sum(b.file_count) FROM (SELECT * FROM leases ORDER BY leased_ms OFFSET ${leasesBefore}) l JOIN batches b ON b.id = l.batch_id`,
  );
  expect(Number(leased[0]![1])).toBe(5);
  expect(w2.stderr.some((l) => /leaving \(job complete\): 5 files in \d+ batches/.test(l))).toBe(true);
  // The failures left with their files: the totals say none, as the merged index has none.
  expect(second.p.stderr.at(-1)).toMatch(/^\[cluster\] 22\/22 100\.0% .*eta 0:00 \|/);
  expect(second.p.stderr.at(-1)).not.toContain("failed");

  // Deletions alone need no worker: the job is merged again without them.
  rmSync(added[0]!);
  const third = await startCoordinatorProc([dir], storage, args);
  procs.push(third.p);
  expect(await third.p.exited).toBe(0);
  expect(await mergedPaths(storage)).toEqual(expected.filter((p) => p !== added[0]));
}, 90_000);
