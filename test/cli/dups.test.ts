// `imgd dups` through the real CLI on an index built by `imgd index` with test-clip.
import { beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { copyPhotos, imgd, imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

describe("imgd dups", () => {
  let dir: string;
  let index: string;
  const path = (name: string) => join(dir, "photos", name);

  beforeAll(async () => {
    dir = tempDir("dups");
    mkdirSync(join(dir, "photos", "old"), { recursive: true });
    copyPhotos(["fruits.jpg", "chelsea.png", "rocket.jpg", "smarties.png"], join(dir, "photos"));
    copyFileSync(join(PHOTOS, "fruits.jpg"), path("old/fruits-backup.jpg"));
    await loadSharp()(join(PHOTOS, "chelsea.png")).resize(200).jpeg({ quality: 60 }).toFile(path("chelsea-small.jpg"));
    index = join(dir, "index");
    const r = await imgd(["index", join(dir, "photos"), "--index", index, "--model", "test-clip"]);
    expect(r.code).toBe(0);
  }, 120_000);

  test("--json lists the byte-identical pair as exact and the resized re-encode with its original as near", async () => {
    const out = await imgdJson(["dups", "--index", index]);
    expect(out.model).toBe("test-clip");
    expect(out.exact.groups.length).toBe(1);
    expect(out.exact.groups[0].images.map((i: any) => i.path).sort()).toEqual([path("fruits.jpg"), path("old/fruits-backup.jpg")]);
    expect(out.exact.groups[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(out.near.threshold_source).toBe("model-default");
    const groupOf = (p: string) => out.near.groups.findIndex((g: any) => g.images.some((i: any) => i.path === p));
    expect(groupOf(path("chelsea.png"))).toBeGreaterThanOrEqual(0);
    expect(groupOf(path("chelsea-small.jpg"))).toBe(groupOf(path("chelsea.png")));
    expect(groupOf(path("rocket.jpg"))).toBe(-1);
    expect(groupOf(path("smarties.png"))).toBe(-1);
    for (const g of out.near.groups) for (const i of g.images) expect(i.similarity).toBeGreaterThanOrEqual(out.near.threshold);
  });

  test("human output names each group's paths and similarities", async () => {
    const r = await imgd(["dups", "--index", index]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("exact duplicates (same imohash and sha256): 1 groups, 2 images");
    expect(r.stdout).toContain(path("old/fruits-backup.jpg"));
    expect(r.stdout).toMatch(new RegExp(`\\d\\.\\d{4}  ${path("chelsea-small.jpg").replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`));
    expect(r.stdout).toContain("the default for test-clip");
  });

  test("--near sets the threshold and --exact-only skips the near pass", async () => {
    const strict = await imgdJson(["dups", "--index", index, "--near", "0.999999"]);
    expect(strict.near.threshold).toBe(0.999999);
    expect(strict.near.threshold_source).toBe("flag");
    const loose = await imgdJson(["dups", "--index", index, "--near", "0.9"]);
    const count = (o: any) => o.near.groups.reduce((n: number, g: any) => n + g.images.length, 0);
    expect(count(loose)).toBeGreaterThan(count(strict));
    const exactOnly = await imgdJson(["dups", "--index", index, "--exact-only"]);
    expect(exactOnly.near).toBeNull();
    expect(exactOnly.exact.groups.length).toBe(1);
  });

  test("a copy deleted since indexing is reported unreadable; the copy left is neither a group nor a collision", async () => {
    const own = tempDir("dups-deleted");
    copyPhotos(["rocket.jpg"], join(own, "photos"));
    copyFileSync(join(own, "photos", "rocket.jpg"), join(own, "photos", "rocket-copy.jpg"));
    const ownIndex = join(own, "index");
    expect((await imgd(["index", join(own, "photos"), "--index", ownIndex, "--model", "test-clip"])).code).toBe(0);
    expect((await imgdJson(["dups", "--index", ownIndex, "--exact-only"])).exact.groups.length).toBe(1);
    rmSync(join(own, "photos", "rocket-copy.jpg"));
    const out = await imgdJson(["dups", "--index", ownIndex, "--exact-only"]);
    expect(out.exact.groups).toEqual([]);
    expect(out.exact.collisions).toBe(0);
    expect(out.exact.unreadable.map((u: any) => u.path)).toEqual([join(own, "photos", "rocket-copy.jpg")]);
    const text = await imgd(["dups", "--index", ownIndex, "--exact-only"]);
    expect(text.stdout).not.toContain("differ in content");
    expect(text.stdout).toContain(`could not read ${join(own, "photos", "rocket-copy.jpg")}`);
  });

  test("a bad threshold or a missing index is a clear error", async () => {
    for (const bad of ["1.5", "0", "abc"]) {
      const r = await imgd(["dups", "--index", index, "--near", bad]);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`--near takes a cosine similarity from 0.9 to 1, got "${bad}"`);
    }
    // Near 0 every image is a near duplicate of every other: refused, not a pass quadratic in the index.
    for (const loose of ["0.000001", "0.2", "0.89"]) {
      const r = await imgd(["dups", "--index", index, "--near", loose]);
      expect([loose, r.code]).toEqual([loose, 2]);
      expect(r.stderr).toContain(`--near takes a cosine similarity from 0.9 to 1, got "${loose}" (below 0.9 merely similar photos are grouped`);
    }
    const missing = await imgd(["dups", "--index", join(dir, "nowhere")]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no index at");
  });
});
