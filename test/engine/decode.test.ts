import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeImage, jpegShrinkShortSide } from "../../src/engine/decode.ts";
import { parseExif } from "../../src/engine/exif.ts";
import { preprocessInto } from "../../src/engine/preprocess.ts";
import { loadSharp } from "../../src/engine/native.ts";
import type { FailureReason } from "../../src/engine/types.ts";
import { imageErrorOf } from "../fixtures/image-error.ts";

const PHOTOS = join(import.meta.dir, "../../../shared/photos");
const sharp = loadSharp();
let dir: string;
let bigJpeg: Uint8Array;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "imgd-decode-"));
  // Camera-sized input, made by upscaling a real photo.
  bigJpeg = await sharp(join(PHOTOS, "messi5.jpg")).resize(3000, 2000, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer();
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const failure = (input: string | Uint8Array, opts = {}) => imageErrorOf(() => decodeImage(input, opts));

function rgbRaw(width: number, height: number, channels: 3 | 4, pixel: (x: number, y: number) => number[]) {
  const data = new Uint8Array(width * height * channels);
  for (let y = 0; y < height; y++) for (let x = 0; x < width; x++) data.set(pixel(x, y), (y * width + x) * channels);
  return sharp(data, { raw: { width, height, channels } });
}

/** A valid 1x1 PNG whose IHDR is rewritten to claim width x height, with a correct CRC. */
function pngClaiming(width: number, height: number, png: Uint8Array): Uint8Array {
  const out = Uint8Array.from(png);
  const view = new DataView(out.buffer);
  // Signature (8) + length (4) + "IHDR" (4), then width and height.
  view.setUint32(16, width);
  view.setUint32(20, height);
  let crc = ~0;
  for (let i = 12; i < 29; i++) {
    crc ^= out[i]!;
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0xedb88320 & -(crc & 1));
  }
  view.setUint32(29, ~crc >>> 0);
  return out;
}

describe("decodeImage output", () => {
  test("a PNG photo decodes to interleaved 8-bit RGB at its full size", async () => {
    const img = await decodeImage(join(PHOTOS, "coffee.png"), { targetShortSide: 224 });
    expect([img.width, img.height, img.sourceWidth, img.sourceHeight]).toEqual([600, 400, 600, 400]);
    expect(img.format).toBe("png");
    expect(img.data.length).toBe(600 * 400 * 3);
  });

  test("a grayscale photo becomes RGB with three equal channels", async () => {
    const img = await decodeImage(join(PHOTOS, "camera.png"));
    expect(img.data.length).toBe(512 * 512 * 3);
    let unequal = 0;
    for (let i = 0; i < img.data.length; i += 3) if (img.data[i] !== img.data[i + 1] || img.data[i] !== img.data[i + 2]) unequal++;
    expect(unequal).toBe(0);
    expect(new Set(img.data).size).toBeGreaterThan(100);
  });

  test("alpha is dropped without compositing onto a background, as Pillow's convert('RGB') does", async () => {
    const png = await rgbRaw(2, 2, 4, () => [10, 20, 30, 0]).png().toBuffer();
    const img = await decodeImage(png);
    expect(Array.from(img.data)).toEqual([10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30]);
  });

  test("16-bit PNGs come out as 8-bit", async () => {
    const data = new Uint16Array(2 * 1 * 3).fill(0x8080);
    const png = await sharp(new Uint8Array(data.buffer), {
      // `depth` is accepted by sharp at run time but missing from its CreateRaw typings.
      raw: { width: 2, height: 1, channels: 3, depth: "ushort" } as { width: number; height: number; channels: 3 },
    })
      .toColourspace("rgb16")
      .png()
      .toBuffer();
    expect((await sharp(png).metadata()).depth).toBe("ushort");
    const img = await decodeImage(png);
    expect(Array.from(img.data)).toEqual([128, 128, 128, 128, 128, 128]);
  });

  test("a CMYK JPEG is converted to three-channel RGB", async () => {
    const cmyk = await sharp(join(PHOTOS, "orange.jpg")).toColourspace("cmyk").jpeg().toBuffer();
    expect((await sharp(cmyk).metadata()).space).toBe("cmyk");
    const img = await decodeImage(cmyk);
    expect(img.data.length).toBe(img.width * img.height * 3);
  });

  test("EXIF orientation 6 is applied: the image and its source size are rotated 90 degrees clockwise", async () => {
    // 4x2 with a red top-left pixel; after a 90 degree clockwise turn it is 2x4 with red at the top right.
    const jpeg = await rgbRaw(4, 2, 3, (x, y) => (x === 0 && y === 0 ? [255, 0, 0] : [0, 0, 255]))
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 100, chromaSubsampling: "4:4:4" })
      .toBuffer();
    const img = await decodeImage(jpeg);
    expect([img.width, img.height, img.sourceWidth, img.sourceHeight]).toEqual([2, 4, 2, 4]);
    const px = (x: number, y: number) => Array.from(img.data.subarray((y * 2 + x) * 3, (y * 2 + x) * 3 + 3));
    expect(px(1, 0)[0]).toBeGreaterThan(150);
    expect(px(0, 3)[0]).toBeLessThan(100);
  });
});

describe("decodeImage shrink-on-load", () => {
  test("without a target a 3000x2000 JPEG decodes at full size", async () => {
    const img = await decodeImage(bigJpeg);
    expect([img.width, img.height]).toEqual([3000, 2000]);
  });

  test("a 224 target decodes a 3000x2000 JPEG at the 1/8 size, 375x250, and reports the source size", async () => {
    const img = await decodeImage(bigJpeg, { targetShortSide: 224 });
    expect([img.width, img.height]).toEqual([375, 250]);
    expect([img.sourceWidth, img.sourceHeight]).toEqual([3000, 2000]);
    expect(img.data.length).toBe(375 * 250 * 3);
  });

  test("a larger target picks a smaller shrink so the short side never drops below it", async () => {
    expect((await decodeImage(bigJpeg, { targetShortSide: 300 })).height).toBe(500);
    expect((await decodeImage(bigJpeg, { targetShortSide: 1200 })).height).toBe(2000);
  });

  test("the shrink factor keeps the short side at or above the target for every size", () => {
    for (let short = 1; short <= 5000; short += 7) {
      for (const target of [224, 256, 336, 384]) {
        const shrunk = jpegShrinkShortSide(short, target);
        if (shrunk !== null) {
          expect(shrunk).toBeGreaterThanOrEqual(target);
          expect(shrunk).toBeLessThan(short);
        } else expect(short < 2 * target).toBe(true);
      }
    }
  });

  test("a large PNG is reduced while it decodes to twice the target, and the model sees nearly the same pixels", async () => {
    const png = await sharp(join(PHOTOS, "fruits.jpg")).resize(3000, 2000, { fit: "fill" }).png({ compressionLevel: 1 }).toBuffer();
    const img = await decodeImage(png, { targetShortSide: 224 });
    expect([img.width, img.height, img.sourceWidth, img.sourceHeight]).toEqual([672, 448, 3000, 2000]);
    const full = await decodeImage(png);
    expect([full.width, full.height]).toEqual([3000, 2000]);
    const spec = { size: 224, interpolation: "bicubic" as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] };
    const [a, b] = [new Float32Array(3 * 224 * 224), new Float32Array(3 * 224 * 224)];
    preprocessInto(img, spec, a, 0);
    preprocessInto(full, spec, b, 0);
    let sum = 0;
    for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
    // Mean difference per value on the 0..1 scale: under one grey level in 255.
    expect(sum / a.length).toBeLessThan(1 / 255);
  });

  test("a PNG already near the target is decoded at its own size", async () => {
    const png = await sharp(join(PHOTOS, "coffee.png")).resize(440, 300, { fit: "fill" }).png().toBuffer();
    expect((await decodeImage(png, { targetShortSide: 224 })).height).toBe(300);
  });
});

describe("decodeImage failures", () => {
  async function expectReason(input: string | Uint8Array, reasons: FailureReason[], opts = {}) {
    const err = await failure(input, opts);
    expect(reasons).toContain(err.reason);
    expect(err.message.length).toBeGreaterThan(10);
    return err;
  }

  test("a zero-byte file is an empty-file failure", async () => {
    const path = join(dir, "empty.jpg");
    writeFileSync(path, "");
    await expectReason(path, ["empty-file"]);
  });

  test("a text file named .jpg is not-an-image, and the message names the file and the cause", async () => {
    const path = join(dir, "notes.jpg");
    writeFileSync(path, "these are my holiday notes, not a photo\n".repeat(10));
    const err = await expectReason(path, ["not-an-image"]);
    expect(err.message).toContain("notes.jpg");
    expect(err.message).toContain("unsupported image format");
  });

  test("a JPEG cut in half is reported as truncated", async () => {
    await expectReason(bigJpeg.subarray(0, bigJpeg.length >> 1), ["truncated"]);
    await expectReason(bigJpeg.subarray(0, bigJpeg.length >> 1), ["truncated"], { targetShortSide: 224 });
  });

  test("a PNG cut in half is reported as truncated", async () => {
    const png = new Uint8Array(readFileSync(join(PHOTOS, "chelsea.png")));
    await expectReason(png.subarray(0, png.length >> 1), ["truncated"]);
  });

  test("a TIFF, WebP or AVIF cut short is truncated, not a format imgd cannot read, as bytes or as a file", async () => {
    const photo = sharp(join(PHOTOS, "orange.jpg"));
    const encoded: Record<string, Buffer> = {
      tiff: await photo.clone().tiff().toBuffer(),
      "deflate.tiff": await photo.clone().tiff({ compression: "deflate" }).toBuffer(),
      webp: await photo.clone().webp().toBuffer(),
      avif: await photo.clone().avif().toBuffer(),
    };
    for (const [name, full] of Object.entries(encoded)) {
      for (const cut of [full.subarray(0, full.length >> 1), full.subarray(0, full.length - 100)]) {
        const path = join(dir, `cut.${name}`);
        writeFileSync(path, cut);
        for (const input of [new Uint8Array(cut), path]) {
          const err = await failure(input, { targetShortSide: 224 });
          expect(`${name} ${cut.length}/${full.length}: ${err.reason}`).toBe(`${name} ${cut.length}/${full.length}: truncated`);
        }
      }
    }
  });

  test("a whole HEIC whose HEVC stream is no HEVC is corrupt, with libheif's reason, and is not called truncated", async () => {
    // Built box by box: one 640x480 hvc1 item whose decoder configuration and data are filler bytes.
    const u32 = (n: number) => Buffer.from([n >>> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255]);
    const u16 = (n: number) => Buffer.from([n >> 8, n & 255]);
    const box = (type: string, ...body: Buffer[]) => Buffer.concat([u32(8 + Buffer.concat(body).length), Buffer.from(type), ...body]);
    const fullBox = (type: string, version: number, ...body: Buffer[]) => box(type, Buffer.from([version, 0, 0, 0]), ...body);
    const pixels = Buffer.alloc(2000, 0x55);
    const meta = (mdatAt: number) =>
      fullBox("meta", 0,
        fullBox("hdlr", 0, u32(0), Buffer.from("pict"), Buffer.alloc(13)),
        fullBox("pitm", 0, u16(1)),
        fullBox("iloc", 0, Buffer.from([0x44, 0]), u16(1), u16(1), u16(0), u16(1), u32(mdatAt), u32(pixels.length)),
        fullBox("iinf", 0, u16(1), fullBox("infe", 2, u16(1), u16(0), Buffer.from("hvc1\0"))),
        box("iprp",
          box("ipco",
            box("hvcC", Buffer.from([1, 1, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 90, 0xf0, 0, 0xfc, 0xfd, 0xf8, 0xf8, 0, 0, 0x0f, 0])),
            fullBox("ispe", 0, u32(640), u32(480))),
          fullBox("ipma", 0, u32(1), u16(1), Buffer.from([2, 0x81, 0x02]))));
    const ftyp = box("ftyp", Buffer.from("heic"), u32(0), Buffer.from("mif1heic"));
    const heic = Buffer.concat([ftyp, meta(ftyp.length + meta(0).length + 8), box("mdat", pixels)]);
    expect(await sharp(heic).metadata()).toMatchObject({ format: "heif", compression: "hevc", width: 640 });
    const path = join(dir, "IMG_0001.HEIC");
    writeFileSync(path, heic);
    for (const input of [new Uint8Array(heic), path]) {
      const err = await failure(input, { targetShortSide: 224 });
      expect(err.reason).toBe("corrupt");
      expect(err.message).toContain("libheif");
    }
  });

  test("a PNG whole to its end with a damaged byte inside is corrupt, not truncated", async () => {
    const png = new Uint8Array(readFileSync(join(PHOTOS, "coffee.png")));
    for (const at of [200, 5000, png.length >> 1]) {
      const damaged = png.slice();
      damaged[at]! ^= 0xff;
      expect((await failure(damaged, { targetShortSide: 224 })).reason).toBe("corrupt");
    }
  });

  test("bad files decoded at the same time each get their own reason, and no other file's error text", async () => {
    const cut = bigJpeg.subarray(0, 5000);
    const text = new TextEncoder().encode("not an image at all\n".repeat(50));
    const header = bigJpeg.subarray(0, 11);
    const runs = await Promise.all(
      Array.from({ length: 12 }, (_, i) => failure([cut, text, header][i % 3]!, { targetShortSide: 224 })),
    );
    runs.forEach((err, i) => {
      expect(err.reason).toBe((["truncated", "not-an-image", "truncated"] as const)[i % 3]);
      expect(err.message.length).toBeLessThan(300);
    });
  });

  test("a missing file is unreadable", async () => {
    const err = await expectReason(join(dir, "nope.jpg"), ["unreadable"]);
    expect(err.message).toContain("ENOENT");
  });

  test("a directory or a pipe given as an image is unreadable, saying what it is, and nothing waits on the pipe", async () => {
    const folder = await expectReason(dir, ["unreadable"]);
    expect(folder.message).toBe(`${dir}: cannot read the file (it is a directory)`);
    const fifo = join(dir, "pipe.jpg");
    Bun.spawnSync(["mkfifo", fifo]);
    const pipe = await expectReason(fifo, ["unreadable"]);
    expect(pipe.message).toBe(`${fifo}: cannot read the file (it is not a regular file)`);
  });

  test("a small PNG claiming 50000x50000 pixels is refused from its header, quickly", async () => {
    const bomb = pngClaiming(50_000, 50_000, await rgbRaw(1, 1, 3, () => [1, 2, 3]).png().toBuffer());
    expect((await sharp(bomb, { limitInputPixels: false }).metadata()).width).toBe(50_000);
    const t0 = performance.now();
    const err = await expectReason(bomb, ["too-many-pixels"]);
    expect(performance.now() - t0).toBeLessThan(200);
    expect(err.message).toContain("50000x50000");
  });

  test("the pixel limit is configurable", async () => {
    await expectReason(join(PHOTOS, "coffee.png"), ["too-many-pixels"], { maxPixels: 600 * 400 - 1 });
    expect((await decodeImage(join(PHOTOS, "coffee.png"), { maxPixels: 600 * 400 })).width).toBe(600);
  });
});

describe("EXIF", () => {
  test("date taken, make and model round-trip through a JPEG written with EXIF", async () => {
    const jpeg = await rgbRaw(8, 8, 3, () => [50, 60, 70])
      .withExif({
        IFD0: { Make: "Acme", Model: "Snapper 3000", DateTime: "2021:01:02 03:04:05" },
        IFD2: { DateTimeOriginal: "2020:07:14 18:30:59" },
      })
      .jpeg()
      .toBuffer();
    const img = await decodeImage(jpeg);
    expect(img.exif).toEqual({ takenAt: "2020-07-14T18:30:59", cameraMake: "Acme", cameraModel: "Snapper 3000" });
  });

  test("DateTime is used when DateTimeOriginal is missing", async () => {
    const jpeg = await rgbRaw(8, 8, 3, () => [50, 60, 70])
      .withExif({ IFD0: { DateTime: "2019:12:31 23:59:58" } })
      .jpeg()
      .toBuffer();
    const img = await decodeImage(jpeg);
    expect(img.exif).toEqual({ takenAt: "2019-12-31T23:59:58", cameraMake: null, cameraModel: null });
  });

  test("a day the month does not have is no date, Feb 29 of a leap year is one, and a leap second is kept as :59", async () => {
    const takenAt = async (date: string) =>
      (await decodeImage(await rgbRaw(8, 8, 3, () => [50, 60, 70]).withExif({ IFD2: { DateTimeOriginal: date } }).jpeg().toBuffer())).exif.takenAt;
    expect(await takenAt("2024:02:31 10:00:00")).toBeNull();
    expect(await takenAt("2023:04:31 08:00:00")).toBeNull();
    expect(await takenAt("2023:02:29 08:00:00")).toBeNull();
    expect(await takenAt("1900:02:29 08:00:00")).toBeNull();
    expect(await takenAt("2000:02:29 08:00:00")).toBe("2000-02-29T08:00:00");
    expect(await takenAt("2024:06:30 23:59:60")).toBe("2024-06-30T23:59:59");
  });

  test("an image without EXIF has all fields null", async () => {
    expect((await decodeImage(join(PHOTOS, "coffee.png"))).exif).toEqual({ takenAt: null, cameraMake: null, cameraModel: null });
  });

  test("garbage, truncated and all-zero-date EXIF blocks give nulls instead of throwing", async () => {
    const none = { takenAt: null, cameraMake: null, cameraModel: null };
    expect(parseExif(undefined)).toEqual(none);
    expect(parseExif(new Uint8Array(0))).toEqual(none);
    const noise = new Uint8Array(4096).map((_, i) => (i * 2654435761) >>> 24);
    expect(parseExif(noise)).toEqual(none);
    // A valid big-endian TIFF header whose IFD offset points far outside the buffer.
    expect(parseExif(Uint8Array.from([0x4d, 0x4d, 0, 42, 0x7f, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]))).toEqual(none);
    const zeroDate = await rgbRaw(8, 8, 3, () => [0, 0, 0])
      .withExif({ IFD0: { Make: "Acme", DateTime: "0000:00:00 00:00:00" } })
      .jpeg()
      .toBuffer();
    const exif = (await sharp(zeroDate).metadata()).exif;
    expect(parseExif(exif)).toEqual({ takenAt: null, cameraMake: "Acme", cameraModel: null });
    // Every truncation of a real block must parse without throwing.
    for (let n = 0; n < exif!.length; n += 3) expect(() => parseExif(exif!.subarray(0, n))).not.toThrow();
  });
});
