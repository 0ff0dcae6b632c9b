import { expect, test } from "bun:test";
import { filesToHashForMoves, knownAfterMoves, movedFromIndex, planIndexWork, resolveMoves } from "../../src/engine/index-plan.ts";
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
  ctimeMs: null,
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
  // Files that failed to decode can be matched when asked for; those that could not be read are read again.
  const locked: KnownFile = { ...known(7, "/z.jpg", 1, 1, "hz"), status: "failed", errorReason: "unreadable" };
  const withFailed = movedFromIndex([known(4, "/old.jpg", 5, 5, "hh"), { ...failed, errorReason: "corrupt" }, locked], { failedToo: true });
  expect([...withFailed.keys()]).toEqual(["hh", "hx"]);
});

/** Plans a run over `scanned` (path -> [size, mtime, content hash]) against `catalog`, hashing what the plan asks for. */
function movesOf(catalog: Map<string, KnownFile>, scanned: Record<string, [number, number, string]>) {
  const files = Object.entries(scanned).map(([path, [size, mtimeMs]]) => ({ path, size, mtimeMs }));
  const plan = planIndexWork(files, catalog, { scope: whole, allowEmptyRoots: true });
  const toHash = filesToHashForMoves(plan, catalog);
  const moves = resolveMoves(plan, catalog, new Map(toHash.map((f) => [f.path, scanned[f.path]![2]])));
  return { plan, hashed: toHash.map((f) => f.path), moves: moves.moves.map((m) => [m.id, m.file.path]), displaced: moves.displaced, plan2: moves };
}

test("two files that swapped names are two moves, not two changed files", () => {
  const catalog = catalogOf(known(1, "/a.jpg", 10, 100, "A"), known(2, "/b.jpg", 20, 200, "B"), known(3, "/c.jpg", 30, 300, "C"));
  // A rename keeps the mtime: /a.jpg now has b's size and mtime.
  const r = movesOf(catalog, { "/a.jpg": [20, 200, "B"], "/b.jpg": [10, 100, "A"], "/c.jpg": [30, 300, "C"] });
  expect(r.moves).toEqual([[2, "/a.jpg"], [1, "/b.jpg"]]);
  expect(r.displaced).toEqual([]);
  const after = knownAfterMoves(catalog, r.plan2);
  expect([...after.values()].map((k) => [k.path, k.id, k.imohash, k.size]).sort()).toEqual([
    ["/a.jpg", 2, "B", 20],
    ["/b.jpg", 1, "A", 10],
    ["/c.jpg", 3, "C", 30],
  ]);
});

test("a cycle of renames, a rename over another file and a rename away from an edited path are all moves", () => {
  const catalog = catalogOf(
    known(1, "/p.jpg", 1, 1, "P"),
    known(2, "/q.jpg", 2, 2, "Q"),
    known(3, "/r.jpg", 3, 3, "R"),
    known(4, "/x.jpg", 4, 4, "X"),
    known(5, "/y.jpg", 5, 5, "Y"),
    known(6, "/e.jpg", 6, 6, "E"),
  );
  const r = movesOf(catalog, {
    // p -> q -> r -> p
    "/p.jpg": [3, 3, "R"],
    "/q.jpg": [1, 1, "P"],
    "/r.jpg": [2, 2, "Q"],
    // x renamed over y: y's photo is gone
    "/y.jpg": [4, 4, "X"],
    // e renamed to f, and a new photo saved as e
    "/e.jpg": [6, 7, "new"],
    "/f.jpg": [6, 6, "E"],
  });
  expect(r.moves).toEqual([[3, "/p.jpg"], [1, "/q.jpg"], [2, "/r.jpg"], [4, "/y.jpg"], [6, "/f.jpg"]]);
  expect(r.displaced).toEqual([5]);
  expect(r.plan.missing.map((m) => m.id)).toEqual([4]);
  const after = knownAfterMoves(catalog, r.plan2);
  // The new photo at /e.jpg has no prior row left: it is embedded as a new image.
  expect(after.has("/e.jpg")).toBe(false);
  expect(after.get("/y.jpg")!.id).toBe(4);
});

test("only candidates of a size some moved-away image had are hashed up front", () => {
  const catalog = catalogOf(known(1, "/a.jpg", 10, 100, "A"), known(2, "/gone.jpg", 20, 200, "G"));
  const r = movesOf(catalog, { "/a.jpg": [10, 100, "A"], "/new1.jpg": [33, 1, "N1"], "/new2.jpg": [20, 1, "G"], "/new3.jpg": [44, 1, "N3"] });
  expect(r.hashed).toEqual(["/new2.jpg"]);
  expect(r.moves).toEqual([[2, "/new2.jpg"]]);
  // A first run has nothing that could have moved: nothing is hashed before the pipeline.
  expect(movesOf(new Map(), { "/a.jpg": [1, 1, "A"] }).hashed).toEqual([]);
});

test("a file with its own content, a copy of a kept photo, and a file that could not be hashed are not moves", () => {
  const catalog = catalogOf(known(1, "/a.jpg", 10, 100, "A"), known(2, "/b.jpg", 10, 200, "B"), known(3, "/c.jpg", 10, 300, "C"));
  const files = [
    { path: "/a.jpg", size: 10, mtimeMs: 999 }, // touched, same content
    { path: "/b.jpg", size: 10, mtimeMs: 200 }, // unchanged
    { path: "/copy.jpg", size: 10, mtimeMs: 1 }, // a copy of b, which is still there
    { path: "/c.jpg", size: 10, mtimeMs: 5 }, // same size, not readable right now
    { path: "/d.jpg", size: 10, mtimeMs: 1 }, // holds C's content
  ];
  const plan = planIndexWork(files, catalog, { scope: whole });
  const moves = resolveMoves(plan, catalog, new Map([["/a.jpg", "A"], ["/copy.jpg", "B"], ["/d.jpg", "C"]]));
  // c.jpg is of the same size and could not be hashed: its photo may still be there, so nothing takes it.
  expect(moves).toEqual({ moves: [], displaced: [] });
});

test("copies of one photo moved together keep their rows with the file of the same name", () => {
  const catalog = catalogOf(known(1, "/old/x.jpg", 10, 1, "D"), known(2, "/old/y.jpg", 10, 1, "D"));
  const r = movesOf(catalog, { "/new/y.jpg": [10, 1, "D"], "/new/x.jpg": [10, 1, "D"] });
  expect(r.moves).toEqual([[2, "/new/y.jpg"], [1, "/new/x.jpg"]]);
});
