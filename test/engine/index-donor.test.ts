// A run that copies embeddings from another index (a re-run's worker and its job's merged index): what it takes, and
// that it holds that index as a reader for as long as it reads it.
import { expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadDuckDB } from "../../src/engine/native.ts";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { CATALOG_FILE } from "../../src/engine/store/catalog.ts";
import { IndexDonor } from "../../src/engine/store/index-donor.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { MODELS, PHOTOS, tempDir } from "../cli/cli-harness.ts";

/** Whether another process can open the catalog at `path` for writing now (as imgd serve would). */
async function writableElsewhere(path: string): Promise<boolean> {
  const script = `import { loadDuckDB } from ${JSON.stringify(join(import.meta.dir, "../../src/engine/native.ts"))};
    try { (await loadDuckDB().DuckDBInstance.create(${JSON.stringify(path)})).closeSync(); console.log("opened"); } catch { console.log("locked"); }`;
  const p = Bun.spawn([process.execPath, "-e", script], { stdout: "pipe", stderr: "inherit" });
  const out = (await new Response(p.stdout).text()).trim();
  await p.exited;
  return out === "opened";
}

/** Two shared photos indexed with test-clip into `<root>/merged`, the index a donor lends from. */
async function mergedOfTwo(prefix: string) {
  const root = tempDir(prefix);
  const photos = join(root, "photos");
  mkdirSync(photos);
  for (const name of ["orange.jpg", "rocket.jpg"]) copyFileSync(join(PHOTOS, name), join(photos, name));
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const merged = join(root, "merged");
  await runIndex({ roots: [photos], indexDir: merged, model, threads: 1 });
  return { root, photos, model, merged };
}

test("a donor lends its embeddings to files of the same content, and stays locked against writers while it is open", async () => {
  const { root, photos, model, merged } = await mergedOfTwo("donor");
  // A table the receiving index has not, and is not copied (not per image, as persons is).
  const duck = await loadDuckDB().DuckDBInstance.create(join(merged, CATALOG_FILE));
  const conn = await duck.connect();
  await conn.run("CREATE TABLE donor_only (note VARCHAR)");
  conn.closeSync();
  duck.closeSync();

  // The same photos somewhere else, indexed into a shard with the merged index as donor.
  const moved = join(root, "moved");
  mkdirSync(moved);
  for (const name of ["orange.jpg", "rocket.jpg"]) copyFileSync(join(photos, name), join(moved, name));
  const shard = join(root, "shard");
  const store = await IndexStore.open(shard, { model: model.manifest });
  const donor = (await IndexDonor.open(merged, model.manifest, store))!;
  try {
    expect(await writableElsewhere(join(merged, CATALOG_FILE))).toBe(false);
    const report = await runIndex({ roots: [moved], indexDir: shard, model, threads: 1, store, donor });
    expect([report.reused, report.embedded]).toEqual([2, 0]);
    // Its stage rows were copied by attaching the donor's catalog: the donor's own lock must outlive that.
    expect(await writableElsewhere(join(merged, CATALOG_FILE))).toBe(false);
    // The donor's tables are not the store's: its own are listed, and a row removed deletes from its own only.
    expect((await store.tables()).has("donor_only")).toBe(false);
    const [[id]] = (await store.read("SELECT id FROM images LIMIT 1")) as [[bigint]];
    await store.removeIds([Number(id)]);
    expect(Number((await store.read("SELECT count(*) FROM images"))[0]![0])).toBe(1);
  } finally {
    await donor.close();
    await store.close();
  }
  expect(await writableElsewhere(join(merged, CATALOG_FILE))).toBe(true);
}, 60_000);

test("a donor that fails to answer costs only the work it would have saved: its files are embedded, not failed", async () => {
  const { root, photos, model, merged } = await mergedOfTwo("donor-fails");
  const store = await IndexStore.open(join(root, "shard"), { model: model.manifest });
  const donor = (await IndexDonor.open(merged, model.manifest, store))!;
  try {
    // Its catalog gone from under it (as an I/O error on the share would make every lookup fail).
    await store.detach(IndexDonor.alias);
    const report = await runIndex({ roots: [photos], indexDir: join(root, "shard"), model, threads: 1, store, donor });
    expect([report.embedded, report.reused, report.failed]).toEqual([2, 0, 0]);
    expect(report.donorError).toContain(IndexDonor.alias);
  } finally {
    await donor.close();
    await store.close();
  }
}, 60_000);

test("a donor finds each of its images by content hash, and nothing for a hash it lacks, even one of the same fingerprint", async () => {
  const root = tempDir("donor-keys");
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const dims = model.manifest.dims;
  // Two hashes of one crc32 (the donor's in-memory fingerprint): only the catalog's imohash can tell them apart.
  const seen = new Map<number, string>();
  let twins: [string, string] | null = null;
  const rand = mulberry32(5);
  while (!twins) {
    const hash = Array.from({ length: 32 }, () => "0123456789abcdef"[Math.floor(rand() * 16)]).join("");
    const other = seen.get(Bun.hash.crc32(hash));
    if (other) twins = [other, hash];
    else seen.set(Bun.hash.crc32(hash), hash);
  }
  const hashes = [twins[0], ...Array.from({ length: 2999 }, (_, i) => `d${String(i).padStart(31, "0")}`)];
  const mergedDir = join(root, "merged");
  const merged = await IndexStore.open(mergedDir, { model: model.manifest });
  const vectors = new Float32Array(hashes.length * dims);
  for (let r = 0; r < hashes.length; r++) vectors[r * dims + (r % dims)] = 1;
  const ids = await merged.addBatch(
    hashes.map((imohash, i) => ({
      path: `/photos/${i}.jpg`, size: 1000 + i, mtimeMs: 0, imohash, width: 4, height: 3,
      takenAt: null, cameraMake: null, cameraModel: null, status: "indexed" as const,
    })),
    vectors,
  );
  await merged.close();

  const store = await IndexStore.open(join(root, "shard"), { model: model.manifest });
  const donor = (await IndexDonor.open(mergedDir, model.manifest, store))!;
  try {
    for (const i of [0, 1, 1500, 2999]) {
      const found = await donor.find(hashes[i]!);
      expect({ i, id: found?.id, hash: found?.row.imohash, one: found?.embedding[i % dims] }).toEqual({ i, id: ids[i], hash: hashes[i], one: 1 });
    }
    expect(await donor.find(twins[1])).toBeNull();
    expect(await donor.find("f".repeat(32))).toBeNull();
  } finally {
    await donor.close();
    await store.close();
  }
}, 60_000);

test("a donor whose first lookup failed answers again once its catalog does (the failure is not kept)", async () => {
  const { root, model, merged } = await mergedOfTwo("donor-recovers");
  const store = await IndexStore.open(join(root, "shard"), { model: model.manifest });
  const donor = (await IndexDonor.open(merged, model.manifest, store))!;
  try {
    const [[hash]] = (await store.read(`SELECT imohash FROM "${IndexDonor.alias}".images LIMIT 1`)) as [[string]];
    // Its catalog gone for a moment (a share that did not answer), then back.
    await store.detach(IndexDonor.alias);
    await expect(donor.find(hash)).rejects.toThrow(IndexDonor.alias);
    await store.attach(join(merged, CATALOG_FILE), IndexDonor.alias);
    expect((await donor.find(hash))?.row.imohash).toBe(hash);
  } finally {
    await donor.close();
    await store.close();
  }
}, 60_000);
