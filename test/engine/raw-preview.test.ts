import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readBmp } from "../../src/engine/bmp.ts";
import { decodeImage } from "../../src/engine/decode.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { isRawName, MAX_PREVIEW_BYTES, NO_PREVIEW, readRawPreview, type RawPreview } from "../../src/engine/raw-preview.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import { ImageError } from "../../src/engine/types.ts";
import { cameraJpeg, cr2File, cr3File, dngFile, dngWithoutPreview, nefFile, orfFile, photoJpeg, rafFile, rw2File, type Camera } from "../fixtures/raw-files.ts";
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

/** The preview of a file that is a RAW. */
async function previewOf(source: string | Uint8Array, name: string): Promise<RawPreview> {
  const found = await readRawPreview(source, name);
  if (!found) throw new Error(`${name}: taken for no RAW`);
  return found;
}

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
        const found = await previewOf(source, name);
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

  test("a file named as a RAW that is another image is decoded as what it is; one that is no image is an ImageError", async () => {
    // A JPEG renamed .CR2 (a camera's JPEG misnamed, or a converter's output): the picture, as a JPEG.
    expect(await readRawPreview(preview, "x.CR2")).toBeNull();
    const renamed = await decodeImage(preview, { name: "x.CR2", targetShortSide: 224 });
    const asJpeg = await decodeImage(preview, { targetShortSide: 224 });
    expect(renamed.format).toBe("jpeg");
    expect(Buffer.from(renamed.data).equals(Buffer.from(asJpeg.data))).toBe(true);
    const path = join(dir, "renamed.orf");
    writeFileSync(path, preview);
    expect([(await decodeImage(path)).format, (await decodeImage(path)).sourceWidth]).toEqual(["jpeg", 1200]);
    const thumbnail = await sharp(await renderThumbnail(path, 128)).metadata();
    expect([thumbnail.width, thumbnail.height]).toEqual([128, 85]);
    const text = await failure(() => decodeImage(new TextEncoder().encode("not a photo at all, just some text"), { name: "x.raf" }));
    expect(text.reason).toBe("not-an-image");
  });

  test("a RAW cut short, or damaged, is an ImageError with its reason", async () => {
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

  test("isRawName takes .dng .cr2 .cr3 .nef .arw .raf .rw2 .orf in any case, and nothing else", () => {
    for (const name of ["a.dng", "A.DNG", "b.Cr2", "c.NEF", "d.arw", "e.CR3", "f.raf", "g.RW2", "h.Orf"]) expect(isRawName(name)).toBe(true);
    for (const name of ["a.tif", "b.crw", "c.jpg", "nef", "d.arw.jpg", "e.raw", "f.rwl"]) expect(isRawName(name)).toBe(false);
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

const FUJI: Camera = { make: "FUJIFILM", model: "X-T3", taken: "2021:05:06 07:08:09" };
const PANASONIC: Camera = { make: "Panasonic", model: "DC-G9", taken: "2022:01:02 03:04:05" };
const OLYMPUS: Camera = { make: "OLYMPUS CORPORATION", model: "E-M1MarkII", taken: "2019:02:03 04:05:06" };
const CANON: Camera = { make: "Canon", model: "Canon EOS R5", taken: "2020:12:31 23:59:59" };
const OM_SYSTEM: Camera = { make: "OM Digital Solutions", model: "OM-1", taken: "2023:04:05 06:07:08" };

interface Sample {
  name: string;
  bytes: Uint8Array;
  /** The JPEG the file carries: the picture, tagged with the file's orientation. */
  jpeg: Uint8Array;
  camera: Camera;
}

/**
 * One file of each format beyond the TIFF-based four, of orientation `n`: CR3 and ORF keep it in their own IFD0 (and
 * their preview, as cameras write it, carries none that counts), RAF and RW2's JPEG carries it in its EXIF.
 */
async function otherFormats(n: number): Promise<Sample[]> {
  const tagged = await withOrientation(preview, n);
  const fuji = await cameraJpeg("messi5.jpg", 1200, 800, FUJI, n);
  const panasonic = await cameraJpeg("messi5.jpg", 1200, 800, PANASONIC, n);
  return [
    { name: "x.cr3", bytes: await cr3File(tagged, [1200, 800], CANON, n), jpeg: tagged, camera: CANON },
    { name: "x.raf", bytes: rafFile(fuji, FUJI.model), jpeg: fuji, camera: FUJI },
    { name: "x.rw2", bytes: rw2File(panasonic, PANASONIC, n), jpeg: panasonic, camera: PANASONIC },
    { name: "x.orf", bytes: await orfFile(tagged, OLYMPUS, n), jpeg: tagged, camera: OLYMPUS },
    { name: "om.orf", bytes: await orfFile(tagged, OM_SYSTEM, n, { omSystem: true }), jpeg: tagged, camera: OM_SYSTEM },
  ];
}

const exifOf = (camera: Camera) => ({ takenAt: camera.taken.replace(/^(\d{4}):(\d{2}):(\d{2}) /, "$1-$2-$3T"), cameraMake: camera.make, cameraModel: camera.model });

describe("CR3, RAF, RW2 and ORF", () => {
  test("the camera's JPEG is found: CR3's PRVW box, RAF's header, RW2's JpgFromRaw, ORF's maker note (Olympus', OM System's)", async () => {
    for (const { name, bytes, jpeg, camera } of await otherFormats(6)) {
      const path = join(dir, name);
      writeFileSync(path, bytes);
      for (const source of [path, bytes]) {
        const found = await previewOf(source, name);
        expect(Buffer.from(found.jpeg).equals(Buffer.from(jpeg))).toBe(true);
        expect([name, found.width, found.height, found.orientation]).toEqual([name, 1200, 800, 6]);
        expect(found.exif).toEqual(exifOf(camera));
      }
    }
  });

  test("each is turned upright by its orientation, as its JPEG tagged with it is", async () => {
    for (const n of [3, 8]) {
      for (const { name, bytes, jpeg } of await otherFormats(n)) {
        const ours = await decodeImage(bytes, { name, targetShortSide: 224 });
        const reference = await decodeImage(jpeg, { targetShortSide: 224 });
        expect([name, ours.sourceWidth, ours.sourceHeight, ours.format]).toEqual([name, reference.sourceWidth, reference.sourceHeight, name.split(".")[1]]);
        expect(Buffer.from(ours.data).equals(Buffer.from(reference.data))).toBe(true);
      }
    }
  });

  test("cut anywhere, each is decoded or an ImageError with its reason; cut inside its preview, truncated", async () => {
    for (const { name, bytes, jpeg } of await otherFormats(1)) {
      const previewAt = Buffer.from(bytes).indexOf(Buffer.from(jpeg));
      expect(previewAt).toBeGreaterThan(0);
      const inPreview = await failure(() => decodeImage(bytes.subarray(0, previewAt + jpeg.length / 2), { name }));
      expect([name, inPreview.reason]).toEqual([name, "truncated"]);
      const reasons = new Set<string>();
      for (let k = 1; k < 40; k++) {
        const cut = bytes.subarray(0, Math.floor((bytes.length * k) / 40));
        try {
          await decodeImage(cut, { name, targetShortSide: 64 });
          reasons.add("decoded");
        } catch (err) {
          expect(err).toBeInstanceOf(ImageError);
          reasons.add((err as ImageError).reason);
        }
      }
      expect([name, reasons.has("truncated")]).toEqual([name, true]);
    }
  });

  test("damaged in its header, directories or boxes, each is decoded or an ImageError, never another throw", async () => {
    let seed = 11;
    const random = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (const { name, bytes, jpeg } of await otherFormats(6)) {
      const previewAt = Buffer.from(bytes).indexOf(Buffer.from(jpeg));
      // Everything but the JPEG's entropy-coded data, whose damage libjpeg reports as it decodes.
      const structure = [...Array(previewAt + 700).keys(), ...Array.from({ length: bytes.length - previewAt - jpeg.length }, (_, i) => previewAt + jpeg.length + i)];
      const reasons = new Set<string>();
      for (let i = 0; i < 120; i++) {
        const damaged = Uint8Array.from(bytes);
        for (let k = 0; k < 3; k++) damaged[structure[Math.floor(random() * structure.length)]!] = Math.floor(random() * 256);
        try {
          await decodeImage(damaged, { name, targetShortSide: 64 });
          reasons.add("decoded");
        } catch (err) {
          expect([name, err instanceof ImageError ? "ImageError" : String(err)]).toEqual([name, "ImageError"]);
          reasons.add((err as ImageError).reason);
        }
      }
      expect([name, reasons.has("decoded")]).toEqual([name, true]);
    }
  });

  test("a preview length past MAX_PREVIEW_BYTES is not read: a clear error, or the next preview where there is one", async () => {
    // Files of that size made sparse: they cost no disk, and a reader that trusted the length would read it all.
    const fuji = await cameraJpeg("messi5.jpg", 1200, 800, FUJI, 1);
    const raf = rafFile(fuji, FUJI.model);
    new DataView(raf.buffer).setUint32(0x58, MAX_PREVIEW_BYTES + 1);
    const rafPath = join(dir, "lying.raf");
    writeFileSync(rafPath, raf);
    truncateSync(rafPath, 0x94 + MAX_PREVIEW_BYTES + 1);
    const err = await failure(() => decodeImage(rafPath));
    expect([err.reason, err.message]).toEqual(["corrupt", expect.stringContaining(`said to be ${MAX_PREVIEW_BYTES + 1} bytes long`)]);

    const cr3 = await cr3File(preview, [1200, 800], CANON, 1);
    const lengthAt = Buffer.from(cr3).indexOf("PRVW") + 4 + 12;
    new DataView(cr3.buffer).setUint32(lengthAt, MAX_PREVIEW_BYTES + 1);
    const cr3Path = join(dir, "lying.cr3");
    writeFileSync(cr3Path, cr3);
    truncateSync(cr3Path, lengthAt + 4 + MAX_PREVIEW_BYTES + 1);
    // Its 160x120 thumbnail (THMB) is whole.
    const found = await previewOf(cr3Path, "lying.cr3");
    expect([found.width, found.height]).toEqual([160, 120]);
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
      ...(await otherFormats(6)).map(({ name, bytes }): [string, Uint8Array] => [name, bytes]),
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
      const ours = await previewOf(path, name);
      expect(largest.length).toBeGreaterThan(0);
      expect(Buffer.from(ours.jpeg).equals(Buffer.from(largest))).toBe(true);
      expect(String(ours.orientation)).toBe(orientation!);
      expect([ours.exif.cameraMake, ours.exif.cameraModel]).toEqual([make!, model!]);
      expect(ours.exif.takenAt).toBe(taken!.replace(/^(\d{4}):(\d{2}):(\d{2}) /, "$1-$2-$3T"));
    }
  });
});
