// Identical vectors (the same photo in many folders) share one graph node; without that they crowd the HNSW graph
// until other photos cannot be found even by their own vector.
import { describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import type { VectorDType } from "../../src/engine/store/index-manifest.ts";
import { TWINS_FILE } from "../../src/engine/store/vectors.ts";
import { plainImages, randomUnitRows, unitModel } from "../fixtures/unit-index.ts";

const DIMS = 64;
const MODEL = unitModel(DIMS);
const unitRows = (n: number, seed: number) => randomUnitRows(n, DIMS, seed);
const images = plainImages;

/** `distinct` random vectors and `copies` of one more, added copies first (the order that hurt most). */
async function libraryWithCopies(dtype: VectorDType, distinct: number, copies: number) {
  const dir = join(mkdtempSync(join(tmpdir(), "imgd-twins-")), "index");
  const store = await IndexStore.open(dir, { model: MODEL, vectors: { dtype } });
  const copy = unitRows(1, 99);
  const repeated = new Float32Array(copies * DIMS);
  for (let i = 0; i < copies; i++) repeated.set(copy, i * DIMS);
  const copyIds = await store.addBatch(images(copies, 0).map((image) => ({ ...image, imohash: "copy" })), repeated);
  const vectors = unitRows(distinct, 7);
  const distinctIds = await store.addBatch(images(distinct, copies), vectors);
  return { dir, store, copy, copyIds, vectors, distinctIds };
}

/** Ids among `ids` that a search for their own vector (row i of `vectors`) does not return in its first `k`. */
async function lost(store: IndexStore, ids: number[], vectors: Float32Array, k: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const hits = await store.search(vectors.subarray(i * DIMS, (i + 1) * DIMS), k);
    if (!hits.some((h) => h.id === ids[i])) out.push(ids[i]!);
  }
  return out;
}

describe("identical vectors", () => {
  for (const dtype of ["f32", "i8"] as const) {
    test(`${dtype}: 300 copies of one photo hide none of 1,500 others, and a search can list every copy`, async () => {
      const { store, copy, copyIds, vectors, distinctIds } = await libraryWithCopies(dtype, 1500, 300);
      expect(await lost(store, distinctIds, vectors, 3)).toEqual([]);
      expect(store.vectorCount).toBe(1800);
      const hits = await store.search(copy, 300);
      expect(hits.map((h) => h.id).sort((a, b) => a - b)).toEqual(copyIds);
      expect(hits.every((h) => h.score > 0.99)).toBe(true);
      await store.close();
    }, 60_000);
  }

  test("copies leave one at a time, the first copy's own id among the first; the rest stay found, across reopening", async () => {
    const { dir, store, copy, copyIds } = await libraryWithCopies("f32", 50, 5);
    await store.removeIds([copyIds[0]!, copyIds[2]!]);
    const remaining = [copyIds[1]!, copyIds[3]!, copyIds[4]!];
    expect((await store.search(copy, 10)).map((h) => h.id).filter((id) => copyIds.includes(id)).sort((a, b) => a - b)).toEqual(remaining);
    expect(store.vectorCount).toBe(53);
    await store.checkpoint();
    await store.close();

    const reopened = await IndexStore.open(dir);
    expect(reopened.recovery).toBe("none");
    expect(reopened.vectorCount).toBe(53);
    await reopened.removeIds(remaining.slice(0, 2));
    expect((await reopened.search(copy, 1))[0]!.id).toBe(copyIds[4]!);
    await reopened.removeIds([copyIds[4]!]);
    expect((await reopened.search(copy, 60)).some((h) => copyIds.includes(h.id))).toBe(false);
    expect(reopened.vectorCount).toBe(50);
    await reopened.checkpoint();
    await reopened.close();
    const last = await IndexStore.open(dir, { readOnly: true });
    expect(last.recovery).toBe("none");
    expect(last.vectorCount).toBe(50);
    await last.close();
  });

  test("a copy re-added under its path keeps one entry; a damaged twins file is caught and the graph rebuilt", async () => {
    const { dir, store, copy, copyIds } = await libraryWithCopies("f32", 20, 4);
    await store.addBatch(images(1, 0), copy);
    expect(store.vectorCount).toBe(24);
    await store.checkpoint();
    await store.close();
    const twins = join(dir, TWINS_FILE);
    writeFileSync(twins, readFileSync(twins, "utf8").replace(/\d+\]/, "999]"));
    const reopened = await IndexStore.open(dir);
    expect(reopened.recovery).toBe("rebuilt");
    const found = (await reopened.search(copy, 4)).map((h) => h.id);
    expect(found.length).toBe(4);
    expect(found.every((id) => id > copyIds[0]!)).toBe(true);
    await reopened.close();
  });

  test("an index written before twins is rebuilt on its first writable open when it holds copies, so they share a node", async () => {
    const { dir, store, copy, copyIds } = await libraryWithCopies("f32", 20, 6);
    await store.checkpoint();
    await store.close();
    const manifestPath = join(dir, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    expect(manifest.vectors.twins).not.toBeNull();
    delete manifest.vectors.twins;
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const writable = await IndexStore.open(dir);
    expect(writable.recovery).toBe("rebuilt");
    expect((await writable.search(copy, 6)).map((h) => h.id).sort((a, b) => a - b)).toEqual(copyIds);
    await writable.close();
    expect(JSON.parse(readFileSync(manifestPath, "utf8")).vectors.twins.bytes).toBeGreaterThan(0);
  });

  test("an index written before twins without copies opens as it is: no rebuild", async () => {
    const dir = join(mkdtempSync(join(tmpdir(), "imgd-twins-")), "index");
    const store = await IndexStore.open(dir, { model: MODEL, vectors: { dtype: "f32" } });
    await store.addBatch(images(30, 0), unitRows(30, 3));
    await store.close();
    const manifestPath = join(dir, "manifest.json");
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    delete manifest.vectors.twins;
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const writable = await IndexStore.open(dir);
    expect(writable.recovery).toBe("none");
    expect(writable.vectorCount).toBe(30);
    await writable.close();
  });
});
