import { afterAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { ImageEmbedder } from "../../src/engine/embed.ts";
import { Ingestor } from "../../src/engine/ingest.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadDuckDB, loadSharp } from "../../src/engine/native.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { makePhotos, MODELS, PHOTOS, spawnCli, startCoordinatorProc, startWorkerProc, tempDir, TOKEN, type Proc } from "./cluster-harness.ts";
import { mergedPaths, readRows } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

/** A coordinator run over `dir` with one worker, to its end (both exit 0): a job's first run, or a re-run. */
async function runJob(dir: string, storage: string, args: string[]): Promise<{ p: Proc; url: string; worker: Proc }> {
  const c = await startCoordinatorProc([dir], storage, args);
  procs.push(c.p);
  const worker = startWorkerProc(c.url);
  procs.push(worker);
  expect(await c.p.exited).toBe(0);
  expect(await worker.exited).toBe(0);
  return { ...c, worker };
}

/** A job of `count` photos (`side` px) in a fresh storage, run once to its merge, batches of 4. */
async function mergedJob(prefix: string, count: number, side: number) {
  const root = tempDir(prefix);
  const dir = join(root, "photos");
  const photos = await makePhotos(dir, count, side);
  const storage = join(root, "storage");
  const args = ["--batch", "4", "--lease-ttl", "2"];
  return { root, dir, photos, storage, args, first: await runJob(dir, storage, args) };
}

test("a merged job run again leases only the files added or replaced since, and merges again without the deleted ones", async () => {
  const root = tempDir("rerun");
  const dir = join(root, "photos");
  const photos = await makePhotos(dir, 20, 100);
  // Two that fail: one is deleted before the second run, the other replaced by a photo.
  const broken = [join(dir, "broken-1.jpg"), join(dir, "broken-2.jpg")];
  for (const path of broken) writeFileSync(path, "not a jpeg");
  const storage = join(root, "storage");
  const args = ["--batch", "5", "--lease-ttl", "2"];
  const first = await runJob(dir, storage, args);
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
  expect(w2.stderr.some((l) => /leaving \(job complete\): 5 files in \d+ batch(es)?\b/.test(l))).toBe(true);
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

test("a merged job's shards are deleted once merged, and a re-run merges only its new shard over the rows kept from the last merge", async () => {
  const root = tempDir("rerun-shards");
  const dir = join(root, "photos");
  const photos = await makePhotos(dir, 12, 80);
  const storage = join(root, "storage");
  const args = ["--batch", "4", "--lease-ttl", "2"];
  const run = async () => (await runJob(dir, storage, args)).p;
  const index = join(storage, "index", "catalog.duckdb");
  const first = await run();
  expect(first.stderr.find((l) => l.includes("merged 1 shard into"))).toContain(": 12 indexed, 0 failed");
  expect(readdirSync(join(storage, "shards"))).toEqual([]);
  const idsBefore = new Map((await readRows(index, "SELECT path, id FROM images")).map((r) => [r[0], r[1]]));

  // One replaced by another photo, two new: the second merge reads one shard of 3 rows and keeps the other 11.
  copyFileSync(photos[2]!, photos[7]!);
  const added = await makePhotos(join(dir, "later"), 2, 72);
  const second = await run();
  expect(second.stderr.find((l) => l.includes("merged 1 shard into"))).toContain("over the 11 rows kept from its last merge: 14 indexed, 0 failed");
  expect(readdirSync(join(storage, "shards"))).toEqual([]);
  expect(await mergedPaths(storage)).toEqual([...photos, ...added].sort());
  // The rows kept are the previous index's own (ids and all), not copies made from the first run's shard.
  const ids = new Map((await readRows(index, "SELECT path, id FROM images")).map((r) => [r[0], r[1]]));
  for (const p of photos.filter((_, i) => i !== 7)) expect(ids.get(p)).toBe(idsBefore.get(p)!);
  expect(ids.get(photos[7]!)).not.toBe(idsBefore.get(photos[7]!)!);
  const [a, b] = await readRows(index, `SELECT embedding FROM images WHERE path IN ('${photos[2]}', '${photos[7]}')`);
  expect(a![0]).toEqual(b![0]);
  const store = await IndexStore.open(join(storage, "index"), { readOnly: true });
  expect((await store.stats()).vectors).toBe(14);
  await store.close();
}, 90_000);

test("a merge killed between its two renames: readers open the complete new index beside the missing one, and the next coordinator puts it in place; a half-built one is never taken", async () => {
  const { root, dir, photos, storage, args, first } = await mergedJob("rerun-swap", 8, 72);
  const ledger = join(storage, "coordinator", "ledger.duckdb");
  const leases = async () => Number((await readRows(ledger, "SELECT count(*) FROM leases"))[0]![0]);
  const leasesBefore = await leases();

  // As mergeShards leaves it between `index -> index.old-PID` and `index.merging-PID -> index`: the new index complete
  // (marked so as it was closed) beside the old one, and no index; the job's phase still 'merging'. The shards are
  // gone: the index is the only copy.
  const killedWhileMerging = async () => {
    const db = await loadDuckDB().DuckDBInstance.create(ledger);
    const conn = await db.connect();
    await conn.run("UPDATE job SET phase = 'merging'");
    conn.closeSync();
    db.closeSync();
  };
  await killedWhileMerging();
  renameSync(join(storage, "index"), join(storage, "index.merging-4242"));
  mkdirSync(join(storage, "index.old-4242"));
  writeFileSync(join(storage, "index.old-4242", "catalog.duckdb"), "the index being replaced");
  // Meanwhile a reader of the index reads the complete one beside it.
  const reader = await IndexStore.open(join(storage, "index"), { readOnly: true });
  expect((await reader.stats()).indexed).toBe(8);
  await reader.close();
  const second = await startCoordinatorProc([dir], storage, args);
  procs.push(second.p);
  expect(await second.p.exited).toBe(0);
  expect(second.p.stderr.some((l) => l.includes(`${join(storage, "index")} restored from ${join(storage, "index.merging-4242")}`))).toBe(true);
  expect(readdirSync(storage).sort()).toEqual(["coordinator", "index", "shards"]);
  expect(await mergedPaths(storage)).toEqual(photos);
  expect(await leases()).toBe(leasesBefore);

  // A merge killed while building, with no index beside it: its index is not complete, so it is not taken. The files
  // the lost index held go back in the queue and are indexed again.
  await killedWhileMerging();
  renameSync(join(storage, "index"), join(storage, "index.merging-4243"));
  rmSync(join(storage, "index.merging-4243", "merge-complete"));
  await expect(IndexStore.open(join(storage, "index"), { readOnly: true })).rejects.toThrow(/no index at/);
  const third = await startCoordinatorProc([dir], storage, args);
  procs.push(third.p);
  await third.p.waitFor(/the merged index is missing/);
  expect(third.p.stderr.some((l) => l.includes("restored from"))).toBe(false);
  const w3 = startWorkerProc(third.url);
  procs.push(w3);
  expect(await third.p.exited).toBe(0);
  expect(await w3.exited).toBe(0);
  expect(third.p.stderr).toContain(`[coordinator] the merged index is missing at ${join(storage, "index")}: the 8 files merged into it are back in the queue`);
  expect(await mergedPaths(storage)).toEqual(photos);
  expect(readdirSync(storage).sort()).toEqual(["coordinator", "index", "shards"]);

  // An index removed by hand from a merged job: run again, the job is indexed and merged again.
  rmSync(join(storage, "index"), { recursive: true });
  const fourth = await startCoordinatorProc([dir], storage, args);
  procs.push(fourth.p);
  await fourth.p.waitFor(/the merged index is missing/);
  const w4 = startWorkerProc(fourth.url);
  procs.push(w4);
  expect(await fourth.p.exited).toBe(0);
  expect(await w4.exited).toBe(0);
  expect(await mergedPaths(storage)).toEqual(photos);
}, 90_000);

test("a re-run's moved folder and touched file take their embeddings and stage rows from the merged index instead of being embedded again", async () => {
  const root = tempDir("rerun-moves");
  const dir = join(root, "photos");
  mkdirSync(join(dir, "trip"), { recursive: true });
  mkdirSync(join(dir, "home"), { recursive: true });
  const sharp = loadSharp();
  // Red boxes, which the test detector calls cars: the stage rows have something to carry over.
  for (let i = 0; i < 6; i++) {
    const red = i % 2 === 0;
    await sharp(join(PHOTOS, ["home.jpg", "fruits.jpg", "building.jpg"][i % 3]!))
      .resize(200 + i * 8)
      .composite(red ? [{ input: { create: { width: 50, height: 30, channels: 3, background: "#ff0000" } }, left: 10, top: 10 }] : [])
      .jpeg({ quality: 90 })
      .toFile(join(dir, i < 4 ? "trip" : "home", `p${i}.jpg`));
  }
  const storage = join(root, "storage");
  const args = ["--batch", "2", "--lease-ttl", "2", "--objects", "--object-model", "test-yolo"];
  const run = async () => (await runJob(dir, storage, args)).worker;
  const index = join(storage, "index", "catalog.duckdb");
  // Per file name: its embedding, and the objects and stage runs its image has.
  const byName = async () =>
    new Map(
      (
        await readRows(
          index,
          `SELECT i.path, i.embedding, (SELECT count(*) FROM objects o WHERE o.image_id = i.id),
             (SELECT string_agg(stage, ',') FROM analysis_runs a WHERE a.image_id = i.id) FROM images i`,
        )
      ).map((r) => [basename(r[0] as string), { path: r[0], embedding: r[1], objects: Number(r[2]), runs: r[3] }]),
    );
  const first = await run();
  expect(first.stderr.some((l) => l.includes("reused"))).toBe(false);
  const before = await byName();
  expect([...before.values()].filter((v) => v.objects > 0)).toHaveLength(3);

  renameSync(join(dir, "trip"), join(dir, "2024-trip"));
  utimesSync(join(dir, "home", "p4.jpg"), new Date(), new Date(Date.now() + 60_000));
  const second = await run();
  expect(second.stderr.find((l) => l.includes("leaving (job complete)"))).toMatch(/: 5 files in 3 batches, 5 of them reused from the merged index$/);
  const after = await byName();
  expect([...after.values()].map((v) => v.path).sort()).toEqual(
    [...["p0", "p1", "p2", "p3"].map((n) => join(dir, "2024-trip", `${n}.jpg`)), ...["p4", "p5"].map((n) => join(dir, "home", `${n}.jpg`))],
  );
  for (const [name, was] of before) expect({ ...after.get(name), path: null }).toEqual({ ...was, path: null });
}, 90_000);

test("a re-run's coordinator SIGKILLed at any point of its merge loses no image: started again, it merges the same index", async () => {
  const { root, dir, photos, storage, args, first } = await mergedJob("rerun-kill", 10, 72);

  const expected = [...photos];
  for (const [round, delayMs] of [0, 30, 60, 90, 120, 250].entries()) {
    // Each round one photo replaced by another, one added: the merge takes a new shard onto the last index.
    copyFileSync(photos[(round + 3) % photos.length]!, photos[round]!);
    expected.push(...(await makePhotos(join(dir, `round-${round}`), 1, 64)));
    const c = await startCoordinatorProc([dir], storage, args);
    procs.push(c.p);
    const w = startWorkerProc(c.url);
    procs.push(w);
    // The merge starts as the worker leaves, and takes ~0.1-0.2 s here: killed at 0, 30, ... 250 ms into it.
    await c.p.waitFor(/worker \S+ left: job complete/);
    await Bun.sleep(delayMs);
    c.p.proc.kill("SIGKILL");
    await c.p.exited;
    expect(await w.exited).toBe(0);
    const again = await startCoordinatorProc([dir], storage, args);
    procs.push(again.p);
    expect(await again.p.exited).toBe(0);
    expect(await mergedPaths(storage)).toEqual(expected.sort());
    const store = await IndexStore.open(join(storage, "index"), { readOnly: true });
    expect((await store.stats()).vectors).toBe(expected.length);
    await store.close();
    expect(readdirSync(storage).sort()).toEqual(["coordinator", "index", "shards"]);
  }
}, 120_000);

test("a re-run whose merged index another process holds open for writing (imgd serve) merges once it is closed", async () => {
  const { root, dir, photos, storage, args, first } = await mergedJob("rerun-served", 4, 64);

  const added = await makePhotos(join(dir, "later"), 1, 56);
  const served = await IndexStore.open(join(storage, "index"));
  const second = await startCoordinatorProc([dir], storage, args);
  procs.push(second.p);
  const w2 = startWorkerProc(second.url);
  procs.push(w2);
  // The worker cannot read it either: it embeds what it is given.
  expect(await w2.exited).toBe(0);
  expect(w2.stderr.some((l) => l.startsWith("[worker] cannot read the merged index"))).toBe(true);
  expect(await second.p.waitFor(/merge deferred/)).toContain(`${join(storage, "index")} is open in another process (imgd serve?): stop it to merge`);
  await served.close();
  expect(await second.p.exited).toBe(0);
  expect(await mergedPaths(storage)).toEqual([...photos, ...added].sort());
}, 60_000);

test("a re-run's merge keeps the rows another writer added to the merged index outside the job's roots (imgd serve's uploads)", async () => {
  const { dir, photos, storage, args } = await mergedJob("rerun-uploads", 4, 64);
  const index = join(storage, "index");
  // An upload through imgd serve on the merged index: its bytes under <index>/uploads, its row in the catalog.
  const served = await IndexStore.open(index);
  const embedder = await ImageEmbedder.open(await resolveModel("test-clip", modelSearchDirs(MODELS)), { threads: 1 });
  const bytes = await loadSharp()(join(PHOTOS, "fruits.jpg")).resize(90).jpeg().toBuffer();
  const report = await new Ingestor({ store: served, embedder, uploadsDir: join(index, "uploads") }).ingest([{ name: "upload.jpg", bytes: new Uint8Array(bytes) }]);
  await embedder.close();
  await served.close();
  expect(report.processed).toBe(1);
  const [[uploaded]] = (await readRows(join(index, "catalog.duckdb"), "SELECT path FROM images WHERE path LIKE '%/uploads/%'")) as [[string]];

  const added = await makePhotos(join(dir, "later"), 1, 56);
  await runJob(dir, storage, args);
  expect(await mergedPaths(storage)).toEqual([...photos, ...added, uploaded].sort());
  expect(existsSync(uploaded)).toBe(true);
}, 60_000);

test("--exclude-dir folders stay out of the merged index; a re-run without it keeps the job's names, one with other names drops and adds their files", async () => {
  const root = tempDir("rerun-exclude");
  const dir = join(root, "photos");
  const photos = await makePhotos(dir, 5, 72);
  const trip = await makePhotos(join(dir, "trip"), 2, 60);
  // Matched at any depth, a nested one too; other sides than the rest, so no two files are the same image.
  const shots = [...(await makePhotos(join(dir, "Screenshots"), 2, 64)), ...(await makePhotos(join(dir, "trip", "Screenshots"), 1, 56))].sort();
  const storage = join(root, "storage");
  const args = ["--batch", "4", "--lease-ttl", "2"];
  const ledger = join(storage, "coordinator", "ledger.duckdb");

  const bad = spawnCli(["coordinator", dir, "--storage", storage, "--token", TOKEN, "--exclude-dir", "trip/Screenshots"]);
  expect(await bad.exited).toBe(2);
  expect(bad.stderr.join("\n")).toContain('--exclude-dir takes a folder name, not a path: "trip/Screenshots"');
  expect(existsSync(storage)).toBe(false);

  const first = await runJob(dir, storage, [...args, "--exclude-dir", "Screenshots"]);
  expect(first.p.stderr).toContain('[coordinator] the scan passed over 2 folders by name ("Screenshots" ×2)');
  expect(await mergedPaths(storage)).toEqual([...photos, ...trip].sort());
  expect(await readRows(ledger, "SELECT exclude_names, total FROM job")).toEqual([['["Screenshots"]', 7n]]);

  // Run again without the flag (a restart by hand, a service's unit): the job's names hold; only the new photo goes out.
  const later = await makePhotos(join(dir, "later"), 1, 52);
  const second = await runJob(dir, storage, args);
  expect(second.p.stderr.some((l) => l.includes("--exclude-dir"))).toBe(false);
  expect(second.worker.stderr.find((l) => l.includes("leaving (job complete)"))).toMatch(/: 1 file in 1 batch\b/);
  expect(await mergedPaths(storage)).toEqual([...photos, ...trip, ...later].sort());

  // Other names replace them: trip/ leaves the job as if deleted (its nested Screenshots with it), Screenshots/ joins.
  const third = await startCoordinatorProc([dir], storage, [...args, "--exclude-dir", "trip"]);
  procs.push(third.p);
  expect(await third.p.waitFor(/--exclude-dir:/)).toBe("[coordinator] --exclude-dir: folders named trip are passed over from now on (were Screenshots)");
  expect(await third.p.waitFor(/the scan passed over/)).toBe('[coordinator] the scan passed over 1 folder by name ("trip")');
  expect(await third.p.waitFor(/roots scanned again/)).toBe("[coordinator] roots scanned again: 2 new files, 0 changed, 2 gone since the job was made");
  const w3 = startWorkerProc(third.url);
  procs.push(w3);
  expect(await third.p.exited).toBe(0);
  expect(await w3.exited).toBe(0);
  expect(await mergedPaths(storage)).toEqual([...photos, ...later, ...shots.filter((p) => !p.includes("/trip/"))].sort());
  expect(await readRows(ledger, "SELECT exclude_names, total FROM job")).toEqual([['["trip"]', 8n]]);

  // A name passed over anyway clears the job's own: everything joins.
  const fourth = await runJob(dir, storage, [...args, "--exclude-dir", "@eaDir"]);
  expect(fourth.p.stderr).toContain("[coordinator] --exclude-dir: folders named @eaDir are passed over from now on (were trip)");
  expect(await mergedPaths(storage)).toEqual([...photos, ...trip, ...shots, ...later].sort());

  // A ledger from before --exclude-dir has no names: its job resumes, passing over no folder by name.
  const db = await loadDuckDB().DuckDBInstance.create(ledger);
  const conn = await db.connect();
  await conn.run("ALTER TABLE job DROP COLUMN exclude_names");
  conn.closeSync();
  db.closeSync();
  const fifth = await startCoordinatorProc([dir], storage, args);
  procs.push(fifth.p);
  expect(await fifth.p.exited).toBe(0);
  expect(fifth.p.stderr.some((l) => l.includes("roots scanned again"))).toBe(false);
  expect(await mergedPaths(storage)).toEqual([...photos, ...trip, ...shots, ...later].sort());
  expect(await readRows(ledger, "SELECT exclude_names, total FROM job")).toEqual([[null, 11n]]);
}, 120_000);
