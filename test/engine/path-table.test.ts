import { describe, expect, test } from "bun:test";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { PathTable } from "../../src/engine/store/path-table.ts";

const PATHS = [
  "/photos/trip/0001.jpg",
  "/photos/trip-b/0001.jpg",
  "/photos/Zürich/Café au lait.jpg",
  "/photos/東京/写真 01.heic",
  "/photos/emoji/🐈 cat.png",
  "no-folder.jpg",
  "/root.jpg",
  "/photos/trip/",
  "/a/b/c/d/e/f/g/h/very long name with spaces and (brackets) [1].jpeg",
];

describe("PathTable: the metadata cache's paths as folder and packed name", () => {
  test("gives back every path exactly, including non-ASCII names and paths without a folder", () => {
    const t = new PathTable();
    PATHS.forEach((p, slot) => t.set(slot, p));
    expect(PATHS.map((_, slot) => t.get(slot))).toEqual(PATHS);
    expect(t.get(PATHS.length)).toBeNull();
  });

  test("prefixTest agrees with String.startsWith for prefixes ending in the folder, at the slash and inside the name", () => {
    const t = new PathTable();
    PATHS.forEach((p, slot) => t.set(slot, p));
    const prefixes = new Set<string>();
    for (const p of PATHS) for (let i = 0; i <= p.length; i++) prefixes.add(p.slice(0, i));
    prefixes.add("/photos/trip/0001.jpgX");
    let matches = 0;
    for (const prefix of prefixes) {
      const test = t.prefixTest(prefix);
      PATHS.forEach((p, slot) => {
        expect({ prefix, slot, is: test(slot) }).toEqual({ prefix, slot, is: p.startsWith(prefix) });
        if (p.startsWith(prefix)) matches++;
      });
    }
    // Both answers occur, so the agreement above is not all false.
    expect(matches).toBeGreaterThan(prefixes.size);
    expect(t.prefixTest("")(PATHS.length)).toBe(false);
    // A folder first seen after the test was made is still judged by its path.
    const before = t.prefixTest("/new/");
    t.set(PATHS.length, "/new/a.jpg");
    expect(before(PATHS.length)).toBe(true);
  });

  test("cleared and renamed slots are dropped and their bytes reclaimed while live paths stay whole", () => {
    const rand = mulberry32(11);
    const t = new PathTable();
    const expected = new Map<number, string>();
    for (let round = 0; round < 40; round++) {
      for (let i = 0; i < 500; i++) {
        const slot = Math.floor(rand() * 3000);
        if (rand() < 0.3) {
          t.clear(slot);
          expected.delete(slot);
        } else {
          const p = `/lib/${Math.floor(rand() * 50)}/${"ä".repeat(Math.floor(rand() * 40))}img-${round}-${i}.jpg`;
          t.set(slot, p);
          expected.set(slot, p);
        }
      }
    }
    for (let slot = 0; slot < 3000; slot++) expect(t.get(slot)).toBe(expected.get(slot) ?? null);
    // 20,000 writes of up to ~110 bytes each would be ~1.5 MB without reclaiming; live names are ~3,000 of them.
    const bytes = (t as unknown as { bytes: Uint8Array }).bytes.length;
    expect(bytes).toBeLessThan(600_000);
  });

  test("a name longer than the room the table grows by is stored whole, with cleared bytes not yet reclaimed", () => {
    const t = new PathTable();
    // 60,000 bytes written, a third of them cleared: too few to compact, so the table grows keeping them.
    for (let slot = 0; slot < 60; slot++) t.set(slot, `/a/${String(slot).padStart(996, "x")}`);
    for (let slot = 0; slot < 20; slot++) t.clear(slot);
    const long = `/a/${"€".repeat(30_000)}`;
    t.set(60, long);
    expect(t.get(60)).toBe(long);
    expect(t.get(59)).toBe(`/a/${String(59).padStart(996, "x")}`);
  });
});
