// Renames among indexed files, including swaps and cycles, keep each photo's image id and everything that hangs off
// it (faces, their persons), and queries still find each photo at its new path.
import { expect, test } from "bun:test";
import { mkdirSync, renameSync } from "node:fs";
import { join } from "node:path";
import { FACE_DIMS, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";
import { copyPhotos, imgd, imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

/** Renames `from[i]` to `to[i]` for every i at once, through temporary names, as a user swapping files would. */
function permute(dir: string, from: string[], to: string[]): void {
  from.forEach((name, i) => renameSync(join(dir, name), join(dir, `${i}.tmp`)));
  to.forEach((name, i) => renameSync(join(dir, `${i}.tmp`), join(dir, name)));
}

test("swapping two files' names and rotating three keeps every image id, face and person name", async () => {
  const root = tempDir("moves");
  const photos = join(root, "photos");
  const index = join(root, "index");
  mkdirSync(photos);
  const names = ["messi5.jpg", "fruits.jpg", "chelsea.png", "rocket.jpg"];
  copyPhotos(names, photos);
  const first = await imgdJson(["index", photos, "--index", index, "--model", "test-clip"]);
  expect(first.embedded).toBe(4);

  // The image id of each photo, found by its own content.
  const idOf = async (photo: string) => (await imgdJson(["query", "--image", join(PHOTOS, photo), "--index", index, "-k", "1"])).hits[0];
  const ids = new Map<string, number>();
  for (const n of names) ids.set(n, (await idOf(n)).id);
  // One face per photo, each named after its photo.
  const faces = await insertFaces(
    join(index, "catalog.duckdb"),
    names.map((n, i) => ({ imageId: ids.get(n)!, embedding: row(unitVectors(4, FACE_DIMS, 3), i) })),
  );
  for (const [i, n] of names.entries()) {
    const r = await imgd(["persons", "assign", String(faces[i]), "--to", `person-${n}`, "--index", index]);
    expect(r.code).toBe(0);
  }

  const check = async (where: Record<string, string>) => {
    for (const [photo, path] of Object.entries(where)) {
      const hit = await idOf(photo);
      expect({ photo, path: hit.path, id: hit.id }).toEqual({ photo, path: join(photos, path), id: ids.get(photo)! });
      const byPerson = await imgdJson(["query", "--person", `person-${photo}`, "--index", index]);
      expect(byPerson.hits.map((h: any) => h.path)).toEqual([join(photos, path)]);
    }
  };

  // a <-> b through a temporary name: each path now holds what the index has under the other.
  permute(photos, ["messi5.jpg", "fruits.jpg"], ["fruits.jpg", "messi5.jpg"]);
  const swapped = await imgdJson(["index", photos, "--index", index]);
  expect([swapped.moved, swapped.embedded, swapped.removed, swapped.unchanged]).toEqual([2, 0, 0, 2]);
  await check({ "messi5.jpg": "fruits.jpg", "fruits.jpg": "messi5.jpg", "chelsea.png": "chelsea.png" });

  // A cycle of three: chelsea -> rocket -> messi5 (holding fruits) -> chelsea.
  permute(photos, ["chelsea.png", "rocket.jpg", "messi5.jpg"], ["rocket.jpg", "messi5.jpg", "chelsea.png"]);
  const rotated = await imgdJson(["index", photos, "--index", index]);
  expect([rotated.moved, rotated.embedded, rotated.removed]).toEqual([3, 0, 0]);
  await check({ "chelsea.png": "rocket.jpg", "rocket.jpg": "messi5.jpg", "fruits.jpg": "chelsea.png", "messi5.jpg": "fruits.jpg" });

  const again = await imgdJson(["index", photos, "--index", index]);
  expect([again.unchanged, again.moved, again.embedded]).toEqual([4, 0, 0]);
  const info = await imgdJson(["info", "--index", index]);
  expect(info.indexed).toBe(4);
}, 120_000);
