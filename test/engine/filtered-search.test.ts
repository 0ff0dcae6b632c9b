// Search with predicates from analysis-stage tables: a selective filter is scored exactly over its candidates, a
// broad one goes through the graph; both must return only matching images, best first, with the same scores.
import { expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { plainImages, randomUnitRows, unitModel } from "../fixtures/unit-index.ts";

const DIMS = 32;
const MODEL = unitModel(DIMS);
const unitVectors = (n: number, seed: number) => randomUnitRows(n, DIMS, seed);
const rows = (n: number) => plainImages(n);

async function storeWithLabels(n: number, labelled: (i: number) => boolean) {
  const store = await IndexStore.open(join(mkdtempSync(join(tmpdir(), "imgd-filter-")), "index"), { model: MODEL });
  const all = unitVectors(n, 7);
  await store.ensureTables(["CREATE TABLE IF NOT EXISTS tags (image_id BIGINT NOT NULL, tag VARCHAR)"]);
  const ids = await store.addBatch(rows(n), all, async (conn, newIds) => {
    for (const [i, id] of newIds.entries()) if (labelled(i)) await conn.run(`INSERT INTO tags VALUES (${id}, 'cat')`);
  });
  return { store, ids, all };
}

const hasCat = [{ sql: "EXISTS (SELECT 1 FROM tags t WHERE t.image_id = images.id AND t.tag = $1)", params: ["cat"] }];

function bruteForce(all: Float32Array, query: Float32Array, ids: number[], keep: (i: number) => boolean, k: number) {
  return ids
    .map((id, i) => {
      let dot = 0;
      for (let d = 0; d < DIMS; d++) dot += all[i * DIMS + d]! * query[d]!;
      return { id, i, dot };
    })
    .filter((x) => keep(x.i))
    .sort((a, b) => b.dot - a.dot)
    .slice(0, k);
}

test("a selective filter returns exactly the best matching images", async () => {
  const keep = (i: number) => i % 97 === 3;
  const { store, ids, all } = await storeWithLabels(3000, keep);
  const query = unitVectors(1, 99);
  const hits = await store.search(query, 10, { where: hasCat });
  const expected = bruteForce(all, query, ids, keep, 10);
  expect(hits.map((h) => h.id)).toEqual(expected.map((e) => e.id));
  // Scored by the index's f16 rows (the default i8 index) or the catalog's f32 embeddings: equal within f16 rounding.
  hits.forEach((h, i) => expect(h.score).toBeCloseTo(expected[i]!.dot, 3));
  await store.close();
});

test("a broad filter still returns only matching images, best first", async () => {
  const keep = (i: number) => i % 4 !== 0;
  const { store, ids, all } = await storeWithLabels(3000, keep);
  const query = unitVectors(1, 5);
  const hits = await store.search(query, 20, { where: hasCat });
  expect(hits.length).toBe(20);
  const byId = new Map(ids.map((id, i) => [id, i]));
  expect(hits.every((h) => keep(byId.get(h.id)!))).toBe(true);
  expect(hits.map((h) => h.score)).toEqual([...hits.map((h) => h.score)].sort((a, b) => b - a));
  // The graph is approximate; most of the exact top 20 must be there.
  const exact = new Set(bruteForce(all, query, ids, keep, 20).map((e) => e.id));
  expect(hits.filter((h) => exact.has(h.id)).length).toBeGreaterThanOrEqual(18);
  await store.close();
});

test("a filter nothing matches returns no hits, and offset pages through the matches", async () => {
  const keep = (i: number) => i < 30;
  const { store } = await storeWithLabels(500, keep);
  const query = unitVectors(1, 3);
  expect(await store.search(query, 5, { where: [{ sql: "FALSE", params: [] }] })).toEqual([]);
  const first = await store.search(query, 10, { where: hasCat });
  const second = await store.search(query, 10, { where: hasCat, offset: 10 });
  expect(new Set([...first, ...second].map((h) => h.id)).size).toBe(20);
  expect(second[0]!.score).toBeLessThanOrEqual(first[9]!.score);
  await store.close();
});

test("a path or date filter that selects few images returns exactly the best of them, as a label filter does", async () => {
  const n = 3000;
  const keep = (i: number) => i % 97 === 3;
  const store = await IndexStore.open(join(mkdtempSync(join(tmpdir(), "imgd-filter-")), "index"), { model: MODEL });
  const all = unitVectors(n, 11);
  // The kept images are in a folder of their own and the only ones taken in 2019.
  const images = rows(n).map((r, i) => ({
    ...r,
    path: keep(i) ? r.path.replace("/photos/", "/photos/kept/") : r.path,
    takenAt: keep(i) ? "2019-06-01T10:00:00" : "2023-06-01T10:00:00",
  }));
  const ids = await store.addBatch(images, all);
  for (const seed of [1, 2, 3]) {
    const query = unitVectors(1, 100 + seed);
    const expected = bruteForce(all, query, ids, keep, 10).map((e) => e.id);
    expect((await store.search(query, 10, { pathPrefix: "/photos/kept/" })).map((h) => h.id)).toEqual(expected);
    expect((await store.search(query, 10, { takenBefore: "2020-01-01" })).map((h) => h.id)).toEqual(expected);
    expect((await store.search(query, 5, { takenBefore: "2020-01-01", offset: 5 })).map((h) => h.id)).toEqual(expected.slice(5));
  }
  await store.close();
});

test("a label filter asked again after a write sees the write: new images, and labels given to existing ones", async () => {
  const keep = (i: number) => i % 50 === 1;
  const { store, ids, all } = await storeWithLabels(600, keep);
  const query = unitVectors(1, 21);
  const before = await store.search(query, 5, { where: hasCat });
  expect(await store.search(query, 5, { where: hasCat })).toEqual(before);
  // A new image, labelled in the same transaction, that is the query itself: the best hit from now on.
  const [added] = await store.addBatch(rows(1).map((r) => ({ ...r, path: "/photos/new.jpg" })), query, async (conn, newIds) => {
    await conn.run(`INSERT INTO tags VALUES (${newIds[0]}, 'cat')`);
  });
  expect((await store.search(query, 5, { where: hasCat }))[0]!.id).toBe(added!);
  // An existing image that was not a cat becomes one through a stage's write: now among the matches.
  const unlabelled = ids.findIndex((_, i) => !keep(i));
  await store.writeRows(async (conn) => void (await conn.run(`INSERT INTO tags VALUES (${ids[unlabelled]}, 'cat')`)));
  const own = all.subarray(unlabelled * DIMS, (unlabelled + 1) * DIMS);
  expect((await store.search(own, 1, { where: hasCat }))[0]!.id).toBe(ids[unlabelled]!);
  expect((await store.browse(1000, { where: hasCat })).map((h) => h.id)).toContain(ids[unlabelled]!);
  await store.close();
});
