import { afterAll, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FileRoots } from "../../src/server/file-roots.ts";

const tmp = realpathSync(mkdtempSync(join(tmpdir(), "imgd-roots-")));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

test("outermost keeps one root per tree of folders, whatever sorts between a folder and its parent", () => {
  expect(FileRoots.outermost(["/a/b", "/a b", "/a", "/a/b/c", "/a b/x", "/ab", "/a"])).toEqual(["/a", "/a b", "/ab"]);
  expect(FileRoots.outermost(["/p/2024/x", "/p/2023", "/p/2024"])).toEqual(["/p/2023", "/p/2024"]);
  expect(FileRoots.outermost(["/", "/p"])).toEqual(["/"]);
  expect(FileRoots.outermost([])).toEqual([]);
});

test("resolve admits real paths under a root and refuses .. and symlinks that lead out of it", async () => {
  const root = join(tmp, "photos");
  mkdirSync(join(root, "2024"), { recursive: true });
  writeFileSync(join(root, "2024", "cat.jpg"), "x");
  writeFileSync(join(tmp, "secret.txt"), "x");
  symlinkSync(join(tmp, "secret.txt"), join(root, "link.jpg"));
  const roots = await FileRoots.of([root]);
  expect(await roots.resolve(join(root, "2024", "cat.jpg"))).toBe(join(root, "2024", "cat.jpg"));
  expect(await roots.resolve(join(root, "2024", "..", "..", "secret.txt"))).toBeNull();
  expect(await roots.resolve(join(root, "link.jpg"))).toBeNull();
  expect(await roots.resolve(join(root, "missing.jpg"))).toBeNull();
});

test("isMissingUnderRoot says not-found only where nothing is and the folder is under a root", async () => {
  const root = join(tmp, "library");
  mkdirSync(root);
  writeFileSync(join(root, "here.jpg"), "x");
  symlinkSync(tmp, join(root, "out"));
  symlinkSync(join(tmp, "nowhere.jpg"), join(root, "dangling.jpg"));
  const roots = await FileRoots.of([root]);
  expect(await roots.isMissingUnderRoot(join(root, "gone.jpg"))).toBe(true);
  expect(await roots.isMissingUnderRoot(join(root, "a", "b", "gone.jpg"))).toBe(true);
  expect(await roots.isMissingUnderRoot(join(root, "here.jpg"))).toBe(false);
  // Outside the roots, by path or through a symlinked folder, a missing file looks like any refused one.
  expect(await roots.isMissingUnderRoot(join(tmp, "gone.jpg"))).toBe(false);
  expect(await roots.isMissingUnderRoot(join(root, "out", "gone.jpg"))).toBe(false);
  expect(await roots.isMissingUnderRoot(join(root, "..", "gone.jpg"))).toBe(false);
  // Something is there (a link whose target is gone): not "missing".
  expect(await roots.isMissingUnderRoot(join(root, "dangling.jpg"))).toBe(false);
});
