import { describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { IndexStore, type NewImage, type SearchOptions } from "../../src/engine/store/index-store.ts";
import { MetadataCache } from "../../src/engine/store/metadata-cache.ts";

const DIMS = 16;
const MODEL = {
  name: "unit",
  dims: DIMS,
  preprocess: { size: 224, interpolation: "bicubic" as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
};

function unitVectors(n: number, rand: () => number): Float32Array {
  const v = new Float32Array(n * DIMS);
  for (let i = 0; i < v.length; i++) v[i] = rand() * 2 - 1;
  for (let r = 0; r < n; r++) {
    const row = v.subarray(r * DIMS, (r + 1) * DIMS);
    const norm = Math.hypot(...row);
    for (let d = 0; d < DIMS; d++) row[d]! /= norm;
  }
  return v;
}

/** Rows with every kind of value the cache must give back exactly: nulls, odd dates, repeated and unique cameras. */
function rows(n: number, offset = 0): NewImage[] {
  return Array.from({ length: n }, (_, i) => {
    const j = i + offset;
    return {
      path: `/photos/${j % 3 === 0 ? "trip" : "home"}/${String(j).padStart(4, "0")}.jpg`,
      size: 5_000_000_000 + j,
      mtimeMs: 1_700_000_000_000 + j,
      imohash: `h${j}`,
      width: j % 5 === 0 ? null : 4000 + j,
      height: j % 5 === 0 ? null : 3000,
      takenAt: j % 4 === 0 ? null : j % 4 === 1 ? `2023-0${1 + (j % 9)}-1${j % 10}T08:30:15` : `0${(j % 9) + 1}99-12-31 23:59:59`,
      cameraMake: j % 6 === 0 ? null : "Canon",
      cameraModel: `EOS ${j % 7}`,
      status: j % 11 === 10 ? ("failed" as const) : ("indexed" as const),
      errorReason: j % 11 === 10 ? "corrupt" : null,
    };
  });
}

async function addRows(store: IndexStore, batch: NewImage[], rand: () => number): Promise<number[]> {
  const indexed = batch.filter((r) => r.status === "indexed").length;
  return store.addBatch(batch, unitVectors(indexed, rand));
}

const FILTERS: SearchOptions[] = [
  {},
  { pathPrefix: "/photos/trip/" },
  { takenAfter: "2023-03-01" },
  { takenBefore: "2023-05-10T12:00:00" },
  { takenAfter: "0199-01-01", takenBefore: "0599-12-31 23:59:59", pathPrefix: "/photos/home" },
  { offset: 5, excludeIds: [3, 4, 5] },
];

describe("the in-memory metadata cache behind IndexStore.search", () => {
  test("search answers are identical with and without the cache, for every filter", async () => {
    const rand = mulberry32(7);
    const store = await IndexStore.open(join(mkdtempSync(join(tmpdir(), "imgd-meta-")), "index"), { model: MODEL });
    await addRows(store, rows(300), rand);
    const queries = Array.from({ length: 8 }, () => unitVectors(1, rand));
    const answers = async () => {
      const out: unknown[] = [];
      for (const q of queries) for (const f of FILTERS) out.push(await store.search(q, 15, f));
      return out;
    };
    const fromCatalog = await answers();
    const cache = await MetadataCache.load(store);
    expect(cache.size).toBe(rows(300).filter((r) => r.status === "indexed").length);
    store.useRecordCache(cache);
    const fromCache = await answers();
    expect(fromCache).toEqual(fromCatalog);
    // The filters do select something, so equality is not two empty lists.
    expect((fromCatalog as unknown[][]).filter((hits) => hits.length > 0).length).toBeGreaterThan(FILTERS.length * 6);
    expect(JSON.stringify(fromCatalog)).toContain("0199-12-31T23:59:59");
    await store.close();
  });

  test("browsing by filters alone gives the catalog's pages in path order, with folders inside folders", async () => {
    const rand = mulberry32(5);
    const store = await IndexStore.open(join(mkdtempSync(join(tmpdir(), "imgd-meta-")), "index"), { model: MODEL });
    // Paths of a folder interleave with those of the folders below it ("/a/b.jpg" < "/a/b/.." < "/a/c.jpg"), and
    // "/ab/" sorts between "/a/" and "/b/" though it shares their first letters.
    const names = ["/a/c.jpg", "/a/b/x.jpg", "/a/b.jpg", "/a/a.jpg", "/a/b/c/z.jpg", "/a/ba.jpg", "/ab/a.jpg", "/b/a.jpg", "/a/b/y.jpg", "top.jpg", "/a/é.jpg", "/a/z.jpg"];
    const batch = Array.from({ length: 120 }, (_, i) => ({ ...rows(1, i)[0]!, path: names[i % names.length]!.replace(/(\.jpg)$/, `${i}$1`) }));
    const ids = await addRows(store, batch, rand);
    await store.removeIds([ids[7]!]);
    const where = [{ sql: "id % 3 <> 0", params: [] }];
    const filters: SearchOptions[] = [{ pathPrefix: "/" }, { pathPrefix: "/a/b" }, { pathPrefix: "/a/" }, { takenAfter: "2023-03-01" }, { pathPrefix: "/a/", where }, { where }];
    const pages = async () => {
      const out: unknown[] = [];
      for (const f of filters) for (const k of [1, 7, 200]) for (const offset of [0, 3, 20, 61, 150]) out.push(await store.browse(k, { ...f, offset }));
      return out;
    };
    const fromCatalog = await pages();
    store.useRecordCache(await MetadataCache.load(store));
    expect(await pages()).toEqual(fromCatalog);
    expect((fromCatalog as unknown[][]).filter((hits) => hits.length > 1).length).toBeGreaterThan(filters.length * 6);
    await store.close();
  });

  test("every write through the store is visible to the very next search", async () => {
    const rand = mulberry32(11);
    const store = await IndexStore.open(join(mkdtempSync(join(tmpdir(), "imgd-meta-")), "index"), { model: MODEL });
    await addRows(store, rows(50), rand);
    store.useRecordCache(await MetadataCache.load(store));

    // Added: a new image is found by its own vector.
    const fresh = unitVectors(1, rand);
    const [newId] = await store.addBatch(rows(1, 500), fresh);
    let hits = await store.search(fresh, 1);
    expect(hits[0]).toMatchObject({ id: newId, path: "/photos/home/0500.jpg", size: 5_000_000_500, width: null, takenAt: null, cameraModel: "EOS 3" });

    // Replaced (same path, new content): the old id is gone, the new one carries the new metadata.
    const replacement = unitVectors(1, rand);
    const [replacedBy] = await store.addBatch([{ ...rows(1, 500)[0]!, size: 42, cameraModel: "new" }], replacement);
    hits = await store.search(fresh, 60);
    expect(hits.map((h) => h.id)).not.toContain(newId);
    expect((await store.search(replacement, 1))[0]).toMatchObject({ id: replacedBy, size: 42, cameraModel: "new" });

    // Moved: same id and vector, new path, and path filters follow it.
    await store.movePaths([{ id: replacedBy!, path: "/elsewhere/moved.jpg", size: 43, mtimeMs: 1 }]);
    expect((await store.search(replacement, 1, { pathPrefix: "/elsewhere/" }))[0]).toMatchObject({ id: replacedBy, path: "/elsewhere/moved.jpg", size: 43 });

    // Removed: never returned again.
    await store.removeIds([replacedBy!]);
    expect((await store.search(replacement, 60)).map((h) => h.id)).not.toContain(replacedBy);
    expect(await store.search(replacement, 5, { pathPrefix: "/elsewhere/" })).toEqual([]);
    await store.close();
  });
});
