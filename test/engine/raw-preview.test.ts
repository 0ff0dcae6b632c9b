import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBmp } from "../../src/engine/bmp.ts";
import { decodeImage } from "../../src/engine/decode.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { isRawName, NO_PREVIEW, readRawPreview } from "../../src/engine/raw-preview.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import { ImageError } from "../../src/engine/types.ts";
import { cr2File, dngFile, dngWithoutPreview, nefFile, photoJpeg, type Camera } from "../fixtures/raw-files.ts";
import { imageErrorOf } from "../fixtures/image-error.ts";

const sharp = loadSharp();
const CAMERA: Camera = { make: "NIKON CORPORATION", model: "NIKON Z 6", taken: "2023:07:14 18:02:33" };
let dir: string;
let preview: Uint8Array;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "imgd-raw-"));
  preview = await photoJpeg("messi5.jpg", 1200, 800);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const failure = imageErrorOf;

/** `jpeg` re-encoded from the same pixels with EXIF orientation `n`: the same picture data, told to turn. */
async function withOrientation(jpeg: Uint8Array, n: number): Promise<Uint8Array> {
  const pixels = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  const { width, height, channels } = pixels.info;
  return new Uint8Array(await sharp(pixels.data, { raw: { width, height, channels } }).jpeg({ quality: 92 }).withMetadata({ orientation: n }).toBuffer());
}

describe("readRawPreview", () => {
  test("finds the largest JPEG in each layout: a DNG SubIFD strip, NEF's 0x0201 SubIFDs (big-endian), CR2's IFD0 strip", async () => {
    const files: [string, Uint8Array][] = [
      ["a.dng", await dngFile(preview, [1200, 800], CAMERA)],
      ["b.nef", await nefFile(preview, CAMERA)],
      ["c.cr2", await cr2File(preview, [1200, 800], CAMERA)],
    ];
    for (const [name, bytes] of files) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      // From its path (positional reads, as a thumbnail is made) and from its bytes (as an index run reads it).
      for (const source of [path, bytes]) {
        const found = await readRawPreview(source, name);
        expect(Buffer.from(found.jpeg).equals(Buffer.from(preview))).toBe(true);
        expect([found.width, found.height, found.orientation]).toEqual([1200, 800, 1]);
        expect(found.exif).toEqual({ takenAt: "2023-07-14T18:02:33", cameraMake: CAMERA.make, cameraModel: CAMERA.model });
      }
    }
  });

  test("a RAW with only sensor data (lossless JPEG, uncompressed) has no preview, though libvips alone would show IFD0", async () => {
    const bytes = await dngWithoutPreview(CAMERA);
    const err = await failure(() => decodeImage(bytes, { name: "IMG_0002.DNG" }));
    expect(err.reason).toBe("not-an-image");
    expect(err.message).toContain(NO_PREVIEW);
    // What imgd would have indexed without this: IFD0's 256x171 thumbnail, as if it were the photo.
    const asTiff = await decodeImage(bytes);
    expect([asTiff.format, asTiff.sourceWidth, asTiff.sourceHeight]).toEqual(["tiff", 256, 171]);
  });

  test("a file named as a RAW that is no TIFF, or cut short, or damaged, is an ImageError with its reason", async () => {
    const notTiff = await failure(() => decodeImage(preview, { name: "x.CR2" }));
    expect(notTiff.reason).toBe("not-an-image");
    expect(notTiff.message).toContain("not a TIFF-based camera RAW file");
    const whole = await dngFile(preview, [1200, 800], CAMERA);
    // Cut inside the preview, whose directory (written after the data) is lost with it.
    const cut = await failure(() => decodeImage(whole.subarray(0, 100_000), { name: "x.dng" }));
    expect(cut.reason).toBe("truncated");
    expect((await failure(() => decodeImage(new Uint8Array(), { name: "x.nef" }))).reason).toBe("empty-file");
    // Damage anywhere in the directories: every outcome is a decoded picture or an ImageError, never another throw.
    const directories = whole.length - 600;
    let seed = 7;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    const reasons = new Set<string>();
    for (let i = 0; i < 150; i++) {
      const damaged = Uint8Array.from(whole);
      for (let k = 0; k < 4; k++) damaged[directories + Math.floor(random() * 600)] = Math.floor(random() * 256);
      damaged[4 + Math.floor(random() * 4)] = i % 5 === 0 ? Math.floor(random() * 256) : damaged[4 + Math.floor(random() * 4)]!;
      try {
        await decodeImage(damaged, { name: "x.dng", targetShortSide: 64 });
        reasons.add("decoded");
      } catch (err) {
        expect(err).toBeInstanceOf(ImageError);
        reasons.add((err as ImageError).reason);
      }
    }
    expect(reasons.has("decoded")).toBe(true);
    expect(reasons.size).toBeGreaterThan(1);
  });

  test("isRawName takes .dng .cr2 .nef .arw in any case, and nothing else", () => {
    for (const name of ["a.dng", "A.DNG", "b.Cr2", "c.NEF", "d.arw"]) expect(isRawName(name)).toBe(true);
    for (const name of ["a.tif", "b.cr3", "c.jpg", "nef", "d.arw.jpg"]) expect(isRawName(name)).toBe(false);
  });
});

describe("a RAW's picture", () => {
  test("is turned by IFD0's orientation, as its preview tagged with that orientation would be, in all eight", async () => {
    for (let n = 1; n <= 8; n++) {
      const tagged = await withOrientation(preview, n);
      const raw = await nefFile(tagged, CAMERA, n);
      const ours = await decodeImage(raw, { name: "x.nef", targetShortSide: 224 });
      const reference = await decodeImage(tagged, { targetShortSide: 224 });
      expect([ours.width, ours.height, ours.sourceWidth, ours.sourceHeight]).toEqual([reference.width, reference.height, reference.sourceWidth, reference.sourceHeight]);
      expect(Buffer.from(ours.data).equals(Buffer.from(reference.data))).toBe(true);
      expect(ours.format).toBe("nef");
    }
    expect((await decodeImage(await nefFile(preview, CAMERA, 6), { name: "x.nef" })).sourceWidth).toBe(800);
  });

  test("takes IFD0's orientation, not one its preview carries", async () => {
    // Same pixel data, EXIF orientation 3 inside the preview; IFD0 says 6.
    const raw = await dngFile(await withOrientation(preview, 3), [1200, 800], CAMERA, 6);
    const ours = await decodeImage(raw, { name: "x.dng" });
    const reference = await decodeImage(await withOrientation(preview, 6));
    expect([ours.sourceWidth, ours.sourceHeight]).toEqual([800, 1200]);
    expect(Buffer.from(ours.data).equals(Buffer.from(reference.data))).toBe(true);
  });

  test("thumbnails from its path show the preview turned upright", async () => {
    const tagged = await withOrientation(preview, 6);
    const path = join(dir, "turned.NEF");
    writeFileSync(path, await nefFile(tagged, CAMERA, 6));
    const ours = await sharp(await renderThumbnail(path, 256)).raw().toBuffer({ resolveWithObject: true });
    const reference = await sharp(await renderThumbnail(tagged, 256)).raw().toBuffer({ resolveWithObject: true });
    expect([ours.info.width, ours.info.height]).toEqual([171, 256]);
    expect(Buffer.from(ours.data).equals(reference.data)).toBe(true);
    const missing = await failure(() => renderThumbnail(join(dir, "gone.dng"), 256));
    expect(missing.reason).toBe("unreadable");
  });

  test("a file that opens but will not read (an I/O error: here EISDIR) is unreadable, not corrupt, as a RAW or a BMP", async () => {
    // "unreadable" keeps an indexed row as it is until the file reads again (an NFS hiccup); "corrupt" replaces it,
    // faces and persons with it. And a thumbnail's failure is an ImageError, whatever the format.
    for (const name of ["folder.dng", "folder.bmp"]) {
      const path = join(dir, name);
      mkdirSync(path);
      const read = () => (name.endsWith(".dng") ? readRawPreview(path, path) : readBmp(path, path, 1e8));
      for (const attempt of [read, () => renderThumbnail(path, 256)]) {
        const err = await failure(attempt);
        expect([err.reason, err.message]).toEqual(["unreadable", expect.stringContaining(`${path}: cannot read the file (EISDIR`)]);
      }
    }
  });
});

// A side-by-side check against a reference reader. exiftool is not installed in CI (Debian: libimage-exiftool-perl),
// so this test is skipped where `exiftool` is not on the PATH.
const exiftool = Bun.which("exiftool");

describe("readRawPreview beside exiftool", () => {
  test.skipIf(!exiftool)("picks the JPEG, orientation, date and camera exiftool reads (skipped without exiftool)", async () => {
    const canon: Camera = { make: "Canon", model: "Canon EOS R5", taken: "2020:12:31 23:59:59" };
    const files: [string, Uint8Array][] = [
      ["x.dng", await dngFile(preview, [1200, 800], CAMERA, 8)],
      ["x.nef", await nefFile(preview, CAMERA, 6)],
      ["x.cr2", await cr2File(preview, [1200, 800], canon, 3)],
      ["none.dng", await dngWithoutPreview(CAMERA)],
    ];
    const run = (args: string[]) => Bun.spawnSync([exiftool!, ...args]).stdout as Uint8Array;
    for (const [name, bytes] of files) {
      const path = join(dir, `exiftool-${name}`);
      writeFileSync(path, bytes);
      const embedded = ["PreviewImage", "JpgFromRaw", "OtherImage", "ThumbnailImage"].map((tag) => run(["-b", `-${tag}`, path]));
      const largest = embedded.reduce((a, b) => (b.length > a.length ? b : a));
      const [orientation, make, model, taken] = new TextDecoder().decode(run(["-n", "-s3", "-Orientation", "-Make", "-Model", "-DateTimeOriginal", path])).trim().split("\n");
      if (name === "none.dng") {
        // exiftool finds no JPEG image in it either.
        expect(largest.length).toBe(0);
        expect((await failure(() => readRawPreview(path, name))).message).toContain(NO_PREVIEW);
        continue;
      }
      const ours = await readRawPreview(path, name);
      expect(largest.length).toBeGreaterThan(0);
      expect(Buffer.from(ours.jpeg).equals(Buffer.from(largest))).toBe(true);
      expect(String(ours.orientation)).toBe(orientation!);
      expect([ours.exif.cameraMake, ours.exif.cameraModel]).toEqual([make!, model!]);
      expect(ours.exif.takenAt).toBe(taken!.replace(/^(\d{4}):(\d{2}):(\d{2}) /, "$1-$2-$3T"));
    }
  });
});
