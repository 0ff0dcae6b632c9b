import { expect, test } from "bun:test";
import { movedFromIndex, planIndexWork } from "../../src/engine/index-plan.ts";
import type { KnownFile } from "../../src/engine/store/catalog.ts";

const known = (id: number, path: string, size: number, mtimeMs: number, imohash = `h${id}`): KnownFile => ({
  id,
  path,
  size,
  mtimeMs,
  imohash,
  status: "indexed",
});

test("unchanged files are skipped, changed and new files become candidates, unseen files are missing", () => {
  const catalog = new Map([
    ["/a.jpg", known(1, "/a.jpg", 10, 100)],
    ["/b.jpg", known(2, "/b.jpg", 20, 200)],
    ["/c.jpg", known(3, "/c.jpg", 30, 300)],
  ]);
  const plan = planIndexWork(
    [
      { path: "/a.jpg", size: 10, mtimeMs: 100 },
      { path: "/b.jpg", size: 20, mtimeMs: 999 },
      { path: "/d.jpg", size: 40, mtimeMs: 400 },
    ],
    catalog,
  );
  expect(plan.unchanged).toBe(1);
  expect(plan.candidates.map((c) => c.path)).toEqual(["/b.jpg", "/d.jpg"]);
  expect(plan.missing.map((m) => m.id)).toEqual([3]);
});

test("only indexed missing files with a content hash can be matched as moved", () => {
  const failed: KnownFile = { ...known(5, "/x.jpg", 1, 1, "hx"), status: "failed" };
  const byHash = movedFromIndex([known(4, "/old.jpg", 5, 5, "hh"), failed, { ...known(6, "/y", 1, 1), imohash: null }]);
  expect([...byHash.keys()]).toEqual(["hh"]);
  expect(byHash.get("hh")![0]!.id).toBe(4);
});
