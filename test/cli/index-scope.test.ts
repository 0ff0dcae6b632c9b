// An index holds many folders; a run over some of them must not touch what it did not scan.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, renameSync, rmSync } from "node:fs";
import { join } from "node:path";
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
