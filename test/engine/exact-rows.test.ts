import { describe, expect, test } from "bun:test";
import { appendFileSync, mkdtempSync, rmSync, statSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { EXACT_FILE, ExactRows } from "../../src/engine/store/exact-rows.ts";
import { IndexStore, type NewImage } from "../../src/engine/store/index-store.ts";

const DIMS = 64;
const RECORD = 8 + DIMS * 2;

function unitRows(n: number, seed: number): Float32Array {
  const rand = mulberry32(seed);
  const v = Float32Array.from({ length: n * DIMS }, () => rand() - 0.5);
  for (let i = 0; i < n; i++) {
    const row = v.subarray(i * DIMS, (i + 1) * DIMS);
    const norm = Math.hypot(...row);
    for (let d = 0; d < DIMS; d++) row[d]! /= norm;
  }
  return v;
}

function dots(rows: Float32Array, query: Float32Array): number[] {
  return Array.from({ length: rows.length / DIMS }, (_, i) => rows.subarray(i * DIMS, (i + 1) * DIMS).reduce((s, x, d) => s + x * query[d]!, 0));
}

function tempFile(): string {
  return join(mkdtempSync(join(tmpdir(), "imgd-exact-")), EXACT_FILE);
}

const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => from + i);

describe("vectors.f16 rows", () => {
  test("scores are the f32 dot products within f16 rounding; ids without a row score NaN", () => {
    const data = unitRows(50, 1);
    const query = unitRows(1, 2);
    const rows = ExactRows.open(tempFile(), DIMS, true);
    rows.add(ids(1, 50), data);
    const scores = rows.scores([...ids(1, 50), 999], query);
    dots(data, query).forEach((want, i) => expect(Math.abs(scores[i]! - want)).toBeLessThan(1e-3));
    expect(scores[50]).toBeNaN();
    expect(rows.size).toBe(50);
    rows.close();
  });

  test("rows and removals survive a reopen; a read-only open reads them too", () => {
    const path = tempFile();
    const data = unitRows(20, 3);
    const rows = ExactRows.open(path, DIMS, true);
    rows.add(ids(1, 20), data);
    rows.remove([3, 4, 77]);
    rows.commit();
    rows.close();
    const again = ExactRows.open(path, DIMS, false);
    expect(again.size).toBe(18);
    expect(again.missing(ids(1, 20))).toEqual([3, 4]);
    const query = data.subarray(9 * DIMS, 10 * DIMS);
    expect(again.scores([10], query)[0]).toBeCloseTo(1, 3);
    expect(() => again.add([30], data.subarray(0, DIMS))).toThrow(/read-only/);
    again.close();
  });

  test("an id that has a row keeps it: adding it again writes nothing", () => {
    const path = tempFile();
    const rows = ExactRows.open(path, DIMS, true);
    rows.add([5, 6], unitRows(2, 4));
    rows.add([6, 7], unitRows(2, 5));
    expect(statSync(path).size).toBe(3 * RECORD);
    rows.close();
  });

  test("a torn last record is ignored and cut off, and later rows land whole after the good ones", () => {
    const path = tempFile();
    const data = unitRows(3, 6);
    const rows = ExactRows.open(path, DIMS, true);
    rows.add([1, 2], data.subarray(0, 2 * DIMS));
    rows.close();
    appendFileSync(path, Buffer.alloc(RECORD / 2, 0xab));
    expect(ExactRows.open(path, DIMS, false).size).toBe(2);
    const reopened = ExactRows.open(path, DIMS, true);
    expect(statSync(path).size).toBe(2 * RECORD);
    reopened.add([3], data.subarray(2 * DIMS));
    reopened.close();
    const last = ExactRows.open(path, DIMS, false);
    expect(last.scores([3], data.subarray(2 * DIMS))[0]).toBeCloseTo(1, 3);
    expect(last.size).toBe(3);
  });

  test("a damaged tail (a wild id, an unknown flag, zeros) ends the valid records and is cut off by a writable open", () => {
    const path = tempFile();
    const data = unitRows(2, 11);
    const rows = ExactRows.open(path, DIMS, true, 100);
    rows.add([1, 2], data);
    rows.close();
    for (const [id, flags] of [[4_000_000_000, 0], [3, 7], [0, 0], [500, 0]]) {
      const bad = Buffer.alloc(RECORD);
      bad.writeUInt32LE(id!, 0);
      bad.writeUInt32LE(flags!, 4);
      appendFileSync(path, bad);
      const reader = ExactRows.open(path, DIMS, false, 100);
      expect(reader.size).toBe(2);
      reader.close();
      const writer = ExactRows.open(path, DIMS, true, 100);
      expect(statSync(path).size).toBe(2 * RECORD);
      writer.close();
    }
    expect(ExactRows.open(path, DIMS, false, 100).scores([2], data.subarray(DIMS))[0]).toBeCloseTo(1, 3);
  });

  test("commit compacts once dead records outnumber live ones, keeping every live row", () => {
    const path = tempFile();
    const data = unitRows(3000, 7);
    const rows = ExactRows.open(path, DIMS, true);
    rows.add(ids(1, 3000), data);
    rows.remove(ids(1, 2900));
    expect(statSync(path).size).toBe(5900 * RECORD);
    rows.commit();
    expect(statSync(path).size).toBe(100 * RECORD);
    const query = data.subarray(2950 * DIMS, 2951 * DIMS);
    expect(rows.scores([2951], query)[0]).toBeCloseTo(1, 3);
    rows.add([5000], data.subarray(0, DIMS));
    rows.close();
    const again = ExactRows.open(path, DIMS, false);
    expect(again.size).toBe(101);
    expect(again.missing([1, 2951, 3000, 5000])).toEqual([1]);
  });

  test("a read-only open of a missing file is empty", () => {
    const rows = ExactRows.open(tempFile(), DIMS, false);
    expect(rows.size).toBe(0);
    expect(rows.scores([1], unitRows(1, 8))[0]).toBeNaN();
  });
});

describe("an i8 index and its vectors.f16", () => {
  const model = {
    name: "unit64",
    dims: DIMS,
    preprocess: { size: 224, interpolation: "bicubic" as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
  };
  const images = (n: number): NewImage[] =>
    Array.from({ length: n }, (_, i) => ({ path: `/p/${i}.jpg`, size: 1, mtimeMs: 1, imohash: `h${i}`, width: 1, height: 1, takenAt: null, cameraMake: null, cameraModel: null, status: "indexed" as const }));

  async function built(): Promise<{ dir: string; data: Float32Array; query: Float32Array; want: string[] }> {
    const dir = join(mkdtempSync(join(tmpdir(), "imgd-exact-index-")), "index");
    const data = unitRows(300, 9);
    const store = await IndexStore.open(dir, { model, vectors: { dtype: "i8" } });
    await store.addBatch(images(300), data);
    const query = unitRows(1, 10);
    const want = (await store.search(query, 10)).map((h) => h.path);
    await store.close();
    return { dir, data, query, want };
  }

  test("search ranks by the rows: the top 10 equal exact search over the f32 data", async () => {
    const { data, query, want } = await built();
    const exact = dots(data, query)
      .map((score, i) => ({ path: `/p/${i}.jpg`, score }))
      .sort((a, b) => b.score - a.score)
      .slice(0, 10)
      .map((e) => e.path);
    expect(want).toEqual(exact);
  });

  test("a lost or cut vectors.f16 is refilled from the catalog by a writable open", async () => {
    const { dir, query, want } = await built();
    const path = join(dir, EXACT_FILE);
    truncateSync(path, 120 * RECORD + 5);
    const store = await IndexStore.open(dir, { model });
    expect(statSync(path).size).toBe(300 * RECORD);
    expect((await store.search(query, 10)).map((h) => h.path)).toEqual(want);
    await store.close();
    rmSync(path);
    const again = await IndexStore.open(dir, { model });
    expect(statSync(path).size).toBe(300 * RECORD);
    await again.close();
  });

  test("a read-only open without vectors.f16 scores from the catalog: same hits", async () => {
    const { dir, query, want } = await built();
    rmSync(join(dir, EXACT_FILE));
    const store = await IndexStore.open(dir, { readOnly: true });
    expect((await store.search(query, 10)).map((h) => h.path)).toEqual(want);
    await store.close();
  });

  test("a removed image leaves search, and its row is marked dead", async () => {
    const { dir, query } = await built();
    const store = await IndexStore.open(dir, { model });
    const top = await store.search(query, 3);
    await store.removeIds([top[0]!.id]);
    const after = await store.search(query, 3);
    expect(after.map((h) => h.id)).not.toContain(top[0]!.id);
    expect(after[0]!.id).toBe(top[1]!.id);
    await store.close();
    expect(statSync(join(dir, EXACT_FILE)).size).toBe(301 * RECORD);
    expect(ExactRows.open(join(dir, EXACT_FILE), DIMS, false).missing([top[0]!.id, top[1]!.id])).toEqual([top[0]!.id]);
  });
});
