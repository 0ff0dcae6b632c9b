// runIndex on what real photo folders hold besides photos: each file is indexed or recorded with its reason, and
// the run goes on.
import { expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { imohashFile } from "../../src/engine/identity.ts";
import { runIndex, WHOLE_READ_MAX_BYTES } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadDuckDB, loadSharp } from "../../src/engine/native.ts";
import { CATALOG_FILE } from "../../src/engine/store/catalog.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { MODELS, PHOTOS, tempDir } from "../cli/cli-harness.ts";
import { dngFile, photoJpeg } from "../fixtures/raw-files.ts";

test("files larger than the whole-read limit are sampled and decoded from disk, never held in memory whole", async () => {
  const root = tempDir("large-files");
  const photos = join(root, "photos");
  mkdirSync(photos);
  // A photo with a long tail of zeros after its end marker (decoders stop at the marker), and a sparse 2 GiB file
  // called .tif: a film scan's size, or a video with the wrong name.
  copyFileSync(join(PHOTOS, "orange.jpg"), join(photos, "padded.jpg"));
  truncateSync(join(photos, "padded.jpg"), WHOLE_READ_MAX_BYTES + 1024 * 1024);
  writeFileSync(join(photos, "huge.tif"), "\0\0\0\x18ftypmp42");
  truncateSync(join(photos, "huge.tif"), 2 * 1024 ** 3);
  copyFileSync(join(PHOTOS, "rocket.jpg"), join(photos, "rocket.jpg"));

  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const peakBefore = process.resourceUsage().maxRSS * 1024;
  const t0 = performance.now();
  const report = await runIndex({ roots: [photos], indexDir: join(root, "index"), model, threads: 1 });
  const seconds = (performance.now() - t0) / 1000;
  const peakGrowth = process.resourceUsage().maxRSS * 1024 - peakBefore;

  expect([report.embedded, report.failed]).toEqual([2, 1]);
  expect(peakGrowth).toBeLessThan(512 * 1024 ** 2);
  expect(seconds).toBeLessThan(10);
  const store = await IndexStore.open(join(root, "index"), { readOnly: true });
  try {
    const known = await store.knownFiles();
    // The sampled hash is the hash of the whole file, as for any other file (a move is recognised by it).
    expect(known.get(join(photos, "padded.jpg"))!.imohash).toBe(await imohashFile(join(photos, "padded.jpg")));
    expect(await store.failures()).toEqual([
      {
        path: join(photos, "huge.tif"),
        reason: "not-an-image",
        error: expect.stringContaining(`${join(photos, "huge.tif")}: not an image in a format we can read`),
      },
    ]);
  } finally {
    await store.close();
  }
}, 60_000);

test("a file rewritten or removed between the scan and its read is left for the next run, keeping its indexed row", async () => {
  const root = tempDir("changing");
  const photos = join(root, "photos");
  const indexDir = join(root, "index");
  mkdirSync(photos);
  for (const n of ["orange.jpg", "apple.jpg"]) copyFileSync(join(PHOTOS, n), join(photos, n));
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const run = (onPlan?: () => void) => runIndex({ roots: [photos], indexDir, model, threads: 1, onPlan });
  expect((await run()).embedded).toBe(2);
  const rows = async () => {
    const store = await IndexStore.open(indexDir, { readOnly: true });
    try {
      return [...(await store.knownFiles()).values()].map((k) => [k.path.slice(photos.length), k.id, k.status]).sort();
    } finally {
      await store.close();
    }
  };
  const before = await rows();

  // orange.jpg is saved again (the scan sees the new mtime) and a new photo arrives; then, after the scan, an editor
  // rewrites orange.jpg in place (half written when it is read) and the new photo is deleted again.
  const orange = readFileSync(join(PHOTOS, "orange.jpg"));
  utimesSync(join(photos, "orange.jpg"), new Date(), new Date(Date.now() - 60_000));
  copyFileSync(join(PHOTOS, "rocket.jpg"), join(photos, "rocket.jpg"));
  const report = await run(() => {
    writeFileSync(join(photos, "orange.jpg"), orange.subarray(0, orange.length / 2));
    rmSync(join(photos, "rocket.jpg"));
  });
  expect([report.changing, report.failed, report.embedded, report.touched]).toEqual([2, 0, 0, 0]);
  expect(await rows()).toEqual(before);

  // Still half a file on the next run: now it is what the file is, and it is recorded as such.
  const next = await run();
  expect([next.changing, next.failed]).toEqual([0, 1]);
  expect((await rows()).find((r) => r[0] === "/orange.jpg")![2]).toBe("failed");
}, 60_000);

/** `photo`'s bytes cut or zero-padded to `size`: a JPEG decoder stops at its end marker, so it still decodes. */
async function photoOfSize(photo: string, size: number): Promise<Buffer> {
  const jpeg = await loadSharp()(join(PHOTOS, photo)).resize(200, 150).jpeg().toBuffer();
  if (jpeg.length > size) throw new Error(`${photo} at 200x150 is ${jpeg.length} bytes, more than ${size}`);
  return Buffer.concat([jpeg, Buffer.alloc(size - jpeg.length)]);
}

async function widthsOf(indexDir: string): Promise<Record<string, number | null>> {
  const store = await IndexStore.open(indexDir, { readOnly: true });
  try {
    const out: Record<string, number | null> = {};
    for (const f of (await store.knownFiles()).values()) out[basename(f.path)] = (await store.getImage(f.id))!.width;
    return out;
  } finally {
    await store.close();
  }
}

/** orange.jpg (its mtime set to `when`) and apple.jpg in a temp folder, and a run that indexes it with test-clip. */
async function orangeAndApple(prefix: string) {
  const root = tempDir(prefix);
  const photos = join(root, "photos");
  const indexDir = join(root, "index");
  mkdirSync(photos);
  for (const n of ["orange.jpg", "apple.jpg"]) copyFileSync(join(PHOTOS, n), join(photos, n));
  const orange = join(photos, "orange.jpg");
  const when = new Date("2024-05-01T12:00:00Z");
  utimesSync(orange, when, when);
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  return { indexDir, orange, when, run: () => runIndex({ roots: [photos], indexDir, model, threads: 1 }) };
}

test("a photo replaced by another of the same size, its mtime kept (cp -p, exiftool -P), is embedded again", async () => {
  const { indexDir, orange, when, run } = await orangeAndApple("replaced");
  expect((await run()).embedded).toBe(2);
  expect(await widthsOf(indexDir)).toEqual({ "orange.jpg": 512, "apple.jpg": 512 });

  writeFileSync(orange, await photoOfSize("rocket.jpg", statSync(orange).size));
  utimesSync(orange, when, when);
  const replaced = await run();
  expect([replaced.embedded, replaced.unchanged]).toEqual([1, 1]);
  expect(await widthsOf(indexDir)).toEqual({ "orange.jpg": 200, "apple.jpg": 512 });

  // A chmod changes only the ctime: the file is hashed from samples and its row kept.
  chmodSync(orange, 0o600);
  const chmodded = await run();
  expect([chmodded.touched, chmodded.embedded, chmodded.unchanged]).toEqual([1, 0, 1]);
  expect((await run()).unchanged).toBe(2);
}, 60_000);

test("touches across many batches and checkpoints are all recorded: the next run finds every file unchanged", async () => {
  const root = tempDir("touches");
  const photos = join(root, "photos");
  const indexDir = join(root, "index");
  mkdirSync(photos);
  const names = ["orange.jpg", "apple.jpg", "rocket.jpg", "fruits.jpg", "home.jpg", "building.jpg", "baboon.jpg"];
  for (const n of names) copyFileSync(join(PHOTOS, n), join(photos, n));
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  // Batches of two, a checkpoint after each: touches are written at checkpoints and at the end.
  const run = () => runIndex({ roots: [photos], indexDir, model, threads: 1, batchSize: 2, checkpointEveryMs: 0 });
  expect((await run()).embedded).toBe(names.length);
  names.forEach((n, i) => utimesSync(join(photos, n), new Date(), new Date(Date.UTC(2024, 0, 1 + i))));
  const touched = await run();
  expect([touched.touched, touched.embedded, touched.unchanged]).toEqual([names.length, 0, 0]);
  const store = await IndexStore.open(indexDir, { readOnly: true });
  try {
    const known = await store.knownFiles();
    for (const n of names) expect(known.get(join(photos, n))!.mtimeMs).toBe(statSync(join(photos, n)).mtimeMs);
  } finally {
    await store.close();
  }
  expect([(await run()).unchanged, (await run()).touched]).toEqual([names.length, 0]);
}, 60_000);

test("a catalog written before ctimes were kept still opens read-only, and its first run records them", async () => {
  const { indexDir, orange, when, run } = await orangeAndApple("no-ctime");
  await run();
  const duck = await loadDuckDB().DuckDBInstance.create(join(indexDir, CATALOG_FILE));
  const conn = await duck.connect();
  await conn.run("ALTER TABLE images DROP COLUMN ctime_ms");
  conn.closeSync();
  duck.closeSync();

  const old = await IndexStore.open(indexDir, { readOnly: true });
  expect([...(await old.knownFiles()).values()].map((f) => f.ctimeMs)).toEqual([null, null]);
  await old.close();
  expect((await run()).unchanged).toBe(2);
  writeFileSync(orange, await photoOfSize("rocket.jpg", statSync(orange).size));
  utimesSync(orange, when, when);
  expect((await run()).embedded).toBe(1);
  expect((await widthsOf(indexDir))["orange.jpg"]).toBe(200);
}, 60_000);

test("a camera RAW is hashed from samples and read only for its preview, never whole: its sensor data is most of the file", async () => {
  const root = tempDir("raw-reads");
  const photos = join(root, "photos");
  mkdirSync(photos);
  // A DNG whose sensor data (here a sparse tail, as far as the TIFF walk is concerned) makes it 60 MB: under the
  // whole-read limit, like most RAW files, yet 99 % of it is nothing a decode of its preview needs.
  const raw = join(photos, "big.dng");
  writeFileSync(raw, await dngFile(await photoJpeg("rocket.jpg", 900, 600), [900, 600], { make: "Nikon", model: "Z 6", taken: "2024:05:06 07:08:09" }));
  truncateSync(raw, 60 * 1024 * 1024);
  expect(statSync(raw).size).toBeLessThan(WHOLE_READ_MAX_BYTES);
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const report = await runIndex({ roots: [photos], indexDir: join(root, "index"), model, threads: 1 });
  expect([report.embedded, report.failed]).toEqual([1, 0]);
  // No whole read happened: the run's read stage never ran.
  expect(report.stages.find((s) => s.stage === "read")!.totalMs).toBe(0);
  const store = await IndexStore.open(join(root, "index"), { readOnly: true });
  try {
    expect((await store.knownFiles()).get(raw)!.imohash).toBe(await imohashFile(raw));
  } finally {
    await store.close();
  }
}, 60_000);
