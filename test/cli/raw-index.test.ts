import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { NO_PREVIEW } from "../../src/engine/raw-preview.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { cameraJpeg, cr2File, cr3File, dngFile, dngWithoutPreview, nefFile, orfFile, photoJpeg, rafFile, rw2File, type Camera } from "../fixtures/raw-files.ts";
import { copyPhotos, imgd, imgdJson, tempDir } from "./cli-harness.ts";

const sharp = loadSharp();
const NIKON: Camera = { make: "NIKON CORPORATION", model: "NIKON D850", taken: "2023:07:14 18:02:33" };
const CANON: Camera = { make: "Canon", model: "Canon EOS 5D Mark IV", taken: "2021:02:03 04:05:06" };

describe("imgd index on a folder of camera RAW files", () => {
  const root = tempDir("raw-index");
  const photos = join(root, "photos");
  // The previews as plain JPEG files, indexed too: what each RAW's row must match.
  const previews = join(root, "previews");
  const index = join(root, "index");
  let summary: string;

  beforeAll(async () => {
    mkdirSync(photos);
    mkdirSync(previews);
    const a = await photoJpeg("messi5.jpg", 1200, 800);
    const fruits = await photoJpeg("fruits.jpg", 1024, 768);
    // Orientation 6 in IFD0; its JPEG twin carries the same orientation in its EXIF.
    const b = new Uint8Array(await sharp(fruits).jpeg({ quality: 92 }).withMetadata({ orientation: 6 }).toBuffer());
    const c = await photoJpeg("rocket.jpg", 900, 600);
    writeFileSync(join(photos, "a.dng"), await dngFile(a, [1200, 800], NIKON));
    writeFileSync(join(photos, "b.NEF"), await nefFile(b, NIKON, 6));
    writeFileSync(join(photos, "c.cr2"), await cr2File(c, [900, 600], CANON));
    writeFileSync(join(photos, "nopreview.dng"), await dngWithoutPreview(NIKON));
    // A camera's RAW+JPEG pair: the JPEG is indexed, the RAW passed over.
    writeFileSync(join(photos, "IMG_0001.CR2"), await cr2File(c, [900, 600], CANON));
    copyPhotos(["orange.jpg"], photos);
    renameSync(join(photos, "orange.jpg"), join(photos, "IMG_0001.JPG"));
    writeFileSync(join(previews, "a.jpg"), a);
    writeFileSync(join(previews, "b.jpg"), b);
    writeFileSync(join(previews, "c.jpg"), c);
    writeFileSync(join(previews, "b-unturned.jpg"), fruits);
    const r = await imgd(["index", photos, previews, "--index", index, "--model", "test-clip"]);
    expect(r.code).toBe(0);
    summary = r.stdout;
  });

  test("the summary names the RAW passed over for its JPEG", () => {
    // Its own path, not an example's: this one happens to be named as the example the line once carried.
    expect(summary).toContain(`skipped 1 RAW file beside a processed image of the same name: ${join(photos, "IMG_0001.CR2")}\n`);
  });

  test("a RAW without a decodable JPEG preview is a failed row with the reason", async () => {
    const info = await imgdJson(["info", "--index", index, "--errors"]);
    expect(info.failures).toHaveLength(1);
    expect(info.failures[0].path).toBe(join(photos, "nopreview.dng"));
    expect(info.failures[0].reason).toBe("not-an-image");
    expect(info.failures[0].error).toContain(NO_PREVIEW);
  });

  test("each RAW's row has its preview's embedding, upright size, and the date and camera of its own IFDs", async () => {
    const store = await IndexStore.open(index, { readOnly: true });
    try {
      const known = await store.knownFiles();
      expect(known.has(join(photos, "IMG_0001.CR2"))).toBe(false);
      expect(known.get(join(photos, "IMG_0001.JPG"))?.status).toBe("indexed");
      const cosineOf = async (x: string, y: string) => {
        const [u, v] = [(await store.getEmbedding(known.get(x)!.id))!, (await store.getEmbedding(known.get(y)!.id))!];
        return u.reduce((s, e, i) => s + e * v[i]!, 0) / Math.hypot(...u) / Math.hypot(...v);
      };
      const expected: Record<string, [number, number, Camera]> = { a: [1200, 800, NIKON], b: [768, 1024, NIKON], c: [900, 600, CANON] };
      const file = { a: "a.dng", b: "b.NEF", c: "c.cr2" } as const;
      for (const [name, [width, height, camera]] of Object.entries(expected)) {
        const path = join(photos, file[name as keyof typeof file]);
        expect(await cosineOf(path, join(previews, `${name}.jpg`))).toBeGreaterThan(0.999);
        const row = (await store.getImage(known.get(path)!.id))!;
        expect([row.width, row.height]).toEqual([width, height]);
        expect([row.cameraMake, row.cameraModel]).toEqual([camera.make, camera.model]);
        expect(String(row.takenAt)).toContain(camera.taken.slice(0, 10).replaceAll(":", "-"));
      }
      // Turned by the RAW's orientation: unturned, the picture embeds differently.
      expect(await cosineOf(join(photos, "b.NEF"), join(previews, "b-unturned.jpg"))).toBeLessThan(0.99);
    } finally {
      await store.close();
    }
  });

  test("query --image takes a RAW file and finds it and its twin first", async () => {
    const r = await imgdJson(["query", "--image", join(photos, "b.NEF"), "--index", index, "-k", "2"]);
    expect(r.hits.map((h: { path: string }) => h.path).sort()).toEqual([join(photos, "b.NEF"), join(previews, "b.jpg")]);
  });
});

const FUJI: Camera = { make: "FUJIFILM", model: "X-T3", taken: "2021:05:06 07:08:09" };
const PANASONIC: Camera = { make: "Panasonic", model: "DC-G9", taken: "2022:01:02 03:04:05" };
const OLYMPUS: Camera = { make: "OLYMPUS CORPORATION", model: "E-M1MarkII", taken: "2019:02:03 04:05:06" };
const CANON_R: Camera = { make: "Canon", model: "Canon EOS R5", taken: "2020:12:31 23:59:59" };

describe("imgd index and query on a folder of CR3, RAF, RW2 and ORF files", () => {
  const root = tempDir("raw-index-more");
  const photos = join(root, "photos");
  const previews = join(root, "previews");
  const index = join(root, "index");
  const files = { a: "a.CR3", b: "b.raf", c: "c.RW2", d: "d.orf" } as const;
  const cameras = { a: CANON_R, b: FUJI, c: PANASONIC, d: OLYMPUS };
  let cr3: Uint8Array;

  beforeAll(async () => {
    mkdirSync(photos);
    mkdirSync(previews);
    const a = await photoJpeg("messi5.jpg", 1200, 800);
    // Fujifilm's and Panasonic's JPEGs carry the camera's EXIF, orientation 6 in the RAF's.
    const b = await cameraJpeg("fruits.jpg", 1024, 768, FUJI, 6);
    const c = await cameraJpeg("rocket.jpg", 900, 600, PANASONIC, 1);
    const d = await photoJpeg("apple.jpg", 1000, 750);
    cr3 = await cr3File(a, [1200, 800], CANON_R);
    writeFileSync(join(photos, files.a), cr3);
    writeFileSync(join(photos, files.b), rafFile(b, FUJI.model));
    writeFileSync(join(photos, files.c), rw2File(c, PANASONIC));
    writeFileSync(join(photos, files.d), await orfFile(d, OLYMPUS));
    // An interrupted copy: cut inside its preview.
    const previewAt = Buffer.from(cr3).indexOf(Buffer.from(a));
    writeFileSync(join(photos, "cut.cr3"), cr3.subarray(0, previewAt + 1000));
    // A JPEG someone named .nef.
    copyPhotos(["orange.jpg"], photos);
    renameSync(join(photos, "orange.jpg"), join(photos, "e.nef"));
    for (const [name, jpeg] of Object.entries({ a, b, c, d })) writeFileSync(join(previews, `${name}.jpg`), jpeg);
    const r = await imgd(["index", photos, previews, "--index", index, "--model", "test-clip"]);
    expect(r.code).toBe(0);
  });

  test("query --image on each RAW finds it and its JPEG twin first", async () => {
    for (const [name, file] of Object.entries(files)) {
      const r = await imgdJson(["query", "--image", join(photos, file), "--index", index, "-k", "2"]);
      expect(r.hits.map((h: { path: string }) => h.path).sort()).toEqual([join(photos, file), join(previews, `${name}.jpg`)]);
    }
  });

  test("rows hold the upright size, date and camera; the cut file is a failure, the JPEG named .nef indexed", async () => {
    const info = await imgdJson(["info", "--index", index, "--errors"]);
    expect(info.failures.map((f: { path: string; reason: string }) => [f.path, f.reason])).toEqual([[join(photos, "cut.cr3"), "truncated"]]);
    const text = await imgd(["info", "--index", index, "--errors"]);
    expect(text.stdout).toContain(`truncated        ${join(photos, "cut.cr3")}  the image data ends early`);
    const store = await IndexStore.open(index, { readOnly: true });
    try {
      const known = await store.knownFiles();
      const sizes = { a: [1200, 800], b: [768, 1024], c: [900, 600], d: [1000, 750] };
      for (const [name, file] of Object.entries(files)) {
        const row = (await store.getImage(known.get(join(photos, file))!.id))!;
        const camera = cameras[name as keyof typeof cameras];
        expect([file, row.width, row.height]).toEqual([file, ...sizes[name as keyof typeof sizes]]);
        expect([row.cameraMake, row.cameraModel]).toEqual([camera.make, camera.model]);
        expect(String(row.takenAt)).toContain(camera.taken.slice(0, 10).replaceAll(":", "-"));
      }
      expect(known.get(join(photos, "e.nef"))?.status).toBe("indexed");
    } finally {
      await store.close();
    }
  });
});
