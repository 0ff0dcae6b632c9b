// An index holds many folders; a run over some of them must not touch what it did not scan.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { THUMBNAIL_DIR, ThumbnailCache } from "../../src/engine/thumbnail.ts";
import { imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

describe("imgd index over part of a library", () => {
  const root = tempDir("scope");
  const [a, b] = [join(root, "a"), join(root, "b")];
  const index = join(root, "index");
  const run = (...args: string[]) => imgdJson(["index", ...args, "--index", index, "--model", "test-clip"]);
  const pathsOf = async () => ((await imgdJson(["query", "--path-prefix", root, "--index", index, "-k", "50"])).hits as { path: string }[]).map((h) => h.path).sort();

  beforeAll(async () => {
    mkdirSync(a, { recursive: true });
    mkdirSync(b, { recursive: true });
    for (const n of ["orange.jpg", "apple.jpg"]) cpSync(join(PHOTOS, n), join(a, n));
    for (const n of ["rocket.jpg", "fruits.jpg", "chelsea.png"]) cpSync(join(PHOTOS, n), join(b, n));
    expect((await run(a, b)).embedded).toBe(5);
  });

  test("indexing one folder leaves the other folders' images in the index", async () => {
    const r = await run(a);
    expect([r.unchanged, r.removed, r.moved]).toEqual([2, 0, 0]);
    expect(await pathsOf()).toHaveLength(5);
  });

  test("a file moved from an unscanned folder into the scanned one keeps its vector; a copy is a new image", async () => {
    const before = await imgdJson(["query", "--image", join(PHOTOS, "rocket.jpg"), "--index", index, "-k", "1"]);
    renameSync(join(b, "rocket.jpg"), join(a, "rocket.jpg"));
    cpSync(join(b, "fruits.jpg"), join(a, "fruits-copy.jpg"));
    const r = await run(a);
    expect([r.moved, r.embedded, r.removed]).toEqual([1, 1, 0]);
    const after = await imgdJson(["query", "--image", join(PHOTOS, "rocket.jpg"), "--index", index, "-k", "1"]);
    expect(after.hits[0].path).toBe(join(a, "rocket.jpg"));
    expect(after.hits[0].id).toBe(before.hits[0].id);
    expect(await pathsOf()).toContain(join(b, "fruits.jpg"));
  });

  test("a folder that comes back empty keeps its images (an unmounted volume) until --allow-empty", async () => {
    rmSync(b, { recursive: true });
    mkdirSync(b);
    const kept = await run(b);
    expect(kept.removed).toBe(0);
    expect(kept.emptyRoots).toEqual([{ root: b, catalogued: 2 }]);
    expect((await pathsOf()).filter((p) => p.startsWith(`${b}/`))).toHaveLength(2);

    const allowed = await run(b, "--allow-empty");
    expect(allowed.removed).toBe(2);
    expect(allowed.emptyRoots).toEqual([]);
    expect((await pathsOf()).filter((p) => p.startsWith(`${b}/`))).toEqual([]);
  });
});

test("a folder indexed by a relative path, then renamed and indexed under its new name, keeps one row per file, failures included", async () => {
  const root = tempDir("renamed-folder");
  const index = join(root, "index");
  mkdirSync(join(root, "old"));
  for (const n of ["orange.jpg", "apple.jpg"]) cpSync(join(PHOTOS, n), join(root, "old", n));
  writeFileSync(join(root, "old", "notes.jpg"), "not a photo\n".repeat(100));
  writeFileSync(join(root, "old", "empty.jpg"), "");
  const run = (dir: string) => imgdJson(["index", dir, "--index", index, "--model", "test-clip"], { cwd: root });
  expect(await run("old")).toMatchObject({ embedded: 2, failed: 2 });
  // The same folder by its absolute path is the same files.
  expect(await run(join(root, "old"))).toMatchObject({ unchanged: 4, embedded: 0, failed: 0 });

  renameSync(join(root, "old"), join(root, "new"));
  expect(await run("new")).toMatchObject({ moved: 4, embedded: 0, failed: 0, removed: 0 });
  const info = await imgdJson(["info", "--index", index, "--errors"]);
  expect([info.indexed, info.failed]).toEqual([2, 2]);
  expect(info.failures.map((f: any) => f.path).sort()).toEqual([join(root, "new", "empty.jpg"), join(root, "new", "notes.jpg")]);
});

test("an index kept inside the folder it indexes does not index its own cached thumbnails", async () => {
  const root = tempDir("index-inside");
  const index = join(root, "imgd-index");
  for (const n of ["orange.jpg", "apple.jpg"]) cpSync(join(PHOTOS, n), join(root, n));
  const run = () => imgdJson(["index", root, "--index", index, "--model", "test-clip"]);
  expect((await run()).embedded).toBe(2);
  // What imgd serve leaves there once a result page was shown.
  const thumbs = new ThumbnailCache(join(index, THUMBNAIL_DIR));
  await thumbs.get("any", 256, join(root, "orange.jpg"));
  expect(readdirSync(join(index, THUMBNAIL_DIR), { recursive: true }).some((f) => String(f).endsWith(".jpg"))).toBe(true);
  const again = await run();
  expect([again.unchanged, again.embedded, again.scanned]).toEqual([2, 0, 2]);
}, 30_000);
