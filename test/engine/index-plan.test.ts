import { expect, test } from "bun:test";
import { movedFromIndex, planIndexWork } from "../../src/engine/index-plan.ts";
import type { ScanScope } from "../../src/engine/scan.ts";
import type { KnownFile } from "../../src/engine/store/catalog.ts";

const known = (id: number, path: string, size: number, mtimeMs: number, imohash = `h${id}`): KnownFile => ({
  id,
  path,
  size,
  mtimeMs,
  imohash,
  status: "indexed",
  errorReason: null,
});
const catalogOf = (...files: KnownFile[]) => new Map(files.map((f) => [f.path, f]));
const whole: ScanScope = { roots: ["/"], unreadable: [] };

test("unchanged files are skipped, changed and new files become candidates, unseen files are missing", () => {
  const catalog = catalogOf(known(1, "/a.jpg", 10, 100), known(2, "/b.jpg", 20, 200), known(3, "/c.jpg", 30, 300));
  const plan = planIndexWork(
    [
      { path: "/a.jpg", size: 10, mtimeMs: 100 },
      { path: "/b.jpg", size: 20, mtimeMs: 999 },
      { path: "/d.jpg", size: 40, mtimeMs: 400 },
    ],
    catalog,
    { scope: whole },
  );
  expect(plan.unchanged).toBe(1);
  expect(plan.candidates.map((c) => c.path)).toEqual(["/b.jpg", "/d.jpg"]);
  expect(plan.missing.map((m) => m.id)).toEqual([3]);
});

test("only files under the scanned roots can be missing: indexing one folder keeps the others", () => {
  const catalog = catalogOf(known(1, "/photos/a/1.jpg", 1, 1), known(2, "/photos/a/2.jpg", 1, 1), known(3, "/photos/b/3.jpg", 1, 1), known(4, "/photos/ab/4.jpg", 1, 1));
  const plan = planIndexWork([{ path: "/photos/a/1.jpg", size: 1, mtimeMs: 1 }], catalog, { scope: { roots: ["/photos/a"], unreadable: [] } });
  // "/photos/ab" shares the prefix "/photos/a" as a string, not as a folder.
  expect(plan.missing.map((m) => m.id)).toEqual([2]);
});

test("files under a path the scan could not read are not missing", () => {
  const catalog = catalogOf(known(1, "/p/locked/1.jpg", 1, 1), known(2, "/p/open/2.jpg", 1, 1), known(3, "/p/open/3.jpg", 1, 1));
  const plan = planIndexWork([{ path: "/p/open/3.jpg", size: 1, mtimeMs: 1 }], catalog, { scope: { roots: ["/p"], unreadable: ["/p/locked"] } });
  expect(plan.missing.map((m) => m.id)).toEqual([2]);
});

test("a root that comes back empty keeps its files and is reported, unless empty roots are allowed", () => {
  const catalog = catalogOf(known(1, "/mnt/nfs/1.jpg", 1, 1), known(2, "/mnt/nfs/x/2.jpg", 1, 1), known(3, "/home/p/3.jpg", 1, 1));
  const scope = { roots: ["/mnt/nfs", "/home/p"], unreadable: [] };
  const kept = planIndexWork([], catalog, { scope });
  expect(kept.emptyRoots).toEqual([
    { root: "/mnt/nfs", catalogued: 2 },
    { root: "/home/p", catalogued: 1 },
  ]);
  expect(kept.missing).toEqual([]);
  const allowed = planIndexWork([], catalog, { scope, allowEmptyRoots: true });
  expect(allowed.emptyRoots).toEqual([]);
  expect(allowed.missing.map((m) => m.id)).toEqual([1, 2, 3]);
  // A root with one image left is not empty: the others under it are missing as usual.
  const partly = planIndexWork([{ path: "/mnt/nfs/1.jpg", size: 1, mtimeMs: 1 }], catalog, { scope });
  expect(partly.missing.map((m) => m.id)).toEqual([2]);
  expect(partly.emptyRoots).toEqual([{ root: "/home/p", catalogued: 1 }]);
});

test("without a scope (a path list, a worker's batch) nothing is missing", () => {
  const plan = planIndexWork([], catalogOf(known(1, "/a.jpg", 1, 1)), { scope: null });
  expect(plan.missing).toEqual([]);
  expect(plan.emptyRoots).toEqual([]);
});

test("a file that could not be read is tried again though its size and mtime are unchanged; other failures are not", () => {
  const failed = (id: number, path: string, errorReason: string): KnownFile => ({ ...known(id, path, 1, 1), status: "failed", imohash: null, errorReason });
  const catalog = catalogOf(failed(1, "/locked.jpg", "unreadable"), failed(2, "/broken.jpg", "corrupt"));
  const plan = planIndexWork(
    [
      { path: "/locked.jpg", size: 1, mtimeMs: 1 },
      { path: "/broken.jpg", size: 1, mtimeMs: 1 },
    ],
    catalog,
    { scope: whole },
  );
  expect(plan.candidates.map((c) => c.path)).toEqual(["/locked.jpg"]);
  expect(plan.unchanged).toBe(1);
});

test("only indexed missing files with a content hash can be matched as moved", () => {
  const failed: KnownFile = { ...known(5, "/x.jpg", 1, 1, "hx"), status: "failed" };
  const byHash = movedFromIndex([known(4, "/old.jpg", 5, 5, "hh"), failed, { ...known(6, "/y", 1, 1), imohash: null }]);
  expect([...byHash.keys()]).toEqual(["hh"]);
  expect(byHash.get("hh")![0]!.id).toBe(4);
});
