import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isBmp, readBmp } from "../../src/engine/bmp.ts";
import { decodeImage, DEFAULT_MAX_PIXELS } from "../../src/engine/decode.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import { BMP_FIXTURES as FIXTURES, bmp24, bmpFixture as fixture } from "../fixtures/bmp-files.ts";
import { imageErrorOf } from "../fixtures/image-error.ts";

const sharp = loadSharp();
// Each BMP fixture and the PNG it was made from (make_fixtures.py): 16-bit files keep `lossyBits` per channel.
const CASES: Record<string, { source: string; lossyBits?: number; alpha?: boolean }> = JSON.parse(
  readFileSync(join(FIXTURES, "cases.json"), "utf8"),
);
const dir = mkdtempSync(join(tmpdir(), "imgd-bmp-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));


async function sourcePixels(name: string, channels: 3 | 4): Promise<Uint8Array> {
  const png = sharp(fixture(name));
  const { data } = await (channels === 4 ? png.ensureAlpha() : png.removeAlpha()).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

const failure = imageErrorOf;

/** `bytes` with `patch` written over it at `at` (little-endian numbers of 2 or 4 bytes). */
function patched(bytes: Uint8Array, writes: [at: number, value: number, size: 2 | 4][]): Uint8Array {
  const out = new Uint8Array(bytes);
  const view = new DataView(out.buffer);
  for (const [at, value, size] of writes) {
    if (size === 2) view.setUint16(at, value, true);
    else view.setInt32(at, value, true);
  }
  return out;
}

describe("readBmp", () => {
  test("has a fixture of every variant it reads", () => {
    expect(Object.keys(CASES).length).toBeGreaterThanOrEqual(21);
  });

  for (const [name, { source, lossyBits, alpha }] of Object.entries(CASES)) {
    const kind = lossyBits ? `within one ${lossyBits}-bit step of` : "exactly";
    test(`${name} decodes to ${kind} the pixels of ${source}${alpha ? ", alpha included" : ""}`, async () => {
      const path = join(FIXTURES, name);
      const fromPath = await readBmp(path, name, DEFAULT_MAX_PIXELS);
      const fromBytes = await readBmp(fixture(name), name, DEFAULT_MAX_PIXELS);
      expect(Buffer.from(fromPath.data).equals(Buffer.from(fromBytes.data))).toBe(true);
      const meta = await sharp(fixture(source)).metadata();
      expect([fromPath.width, fromPath.height, fromPath.channels]).toEqual([meta.width!, meta.height!, alpha ? 4 : 3]);
      const expected = await sourcePixels(source, fromPath.channels);
      if (!lossyBits) {
        expect(Buffer.from(fromPath.data).equals(Buffer.from(expected))).toBe(true);
        return;
      }
      const step = 255 / (2 ** lossyBits - 1);
      let worst = 0;
      let total = 0;
      for (let i = 0; i < expected.length; i++) {
        const d = Math.abs(fromPath.data[i]! - expected[i]!);
        worst = Math.max(worst, d);
        total += d;
      }
      expect(worst).toBeLessThanOrEqual(Math.ceil(step));
      // The writer's rounding costs about half a step on average; a decoder that left the low bits zero (31 read as
      // 248, not 255) would add most of another half.
      expect(total / expected.length).toBeLessThan(0.6 * step);
    });
  }

  test("a 32-bit file whose alpha mask is set but every alpha 0 is opaque RGB, as browsers show it", async () => {
    const bytes = fixture("v5-argb32.bmp");
    const offset = new DataView(bytes.buffer).getUint32(10, true);
    const clear = new Uint8Array(bytes);
    for (let i = offset + 3; i < clear.length; i += 4) clear[i] = 0;
    const image = await readBmp(clear, "clear.bmp", DEFAULT_MAX_PIXELS);
    expect(image.channels).toBe(3);
    expect(Buffer.from(image.data).equals(Buffer.from(await sourcePixels("photo-alpha.png", 3)))).toBe(true);
  });

  test("a file cut short is truncated, from its header, palette, rows or RLE data", async () => {
    const cases: [string, number, RegExp][] = [
      ["rgb24.bmp", 20, /DIB header/],
      ["pal8.bmp", 200, /palette|rows/],
      ["rgb24.bmp", 3000, /holds \d+ of its 35 rows/],
      ["rle8.bmp", 3000, /RLE data stops at row \d+ of 35/],
      ["rle4.bmp", 700, /RLE data stops/],
    ];
    for (const [name, keep, why] of cases) {
      const err = await failure(() => readBmp(fixture(name).subarray(0, keep), name, DEFAULT_MAX_PIXELS));
      expect(err.reason).toBe("truncated");
      expect(err.message).toContain("the image data ends early (truncated file)");
      expect(err.message).toMatch(why);
    }
  });

  test("a bad header is corrupt, with what is wrong with it", async () => {
    const rgb = fixture("rgb24.bmp");
    const cases: [Uint8Array, RegExp][] = [
      [patched(rgb, [[14, 99, 4]]), /DIB header of 99 bytes/],
      [patched(rgb, [[18, 0, 4]]), /a size of 0x35/],
      [patched(rgb, [[26, 0, 2]]), /0 colour planes/],
      [patched(rgb, [[28, 7, 2]]), /7 bits per pixel/],
      [patched(rgb, [[30, 9, 4]]), /unknown compression 9/],
      [patched(fixture("v3-bitfields-rgb565.bmp"), [[54, 0xf0f0, 4]]), /colour mask 0xf0f0/],
      [patched(fixture("rle8.bmp"), [[22, -35, 4]]), /top-down RLE/],
    ];
    for (const [bytes, why] of cases) {
      const err = await failure(() => readBmp(bytes, "bad.bmp", DEFAULT_MAX_PIXELS));
      expect(err.reason).toBe("corrupt");
      expect(err.message).toStartWith("bad.bmp: the image data is corrupt (bad BMP header: ");
      expect(err.message).toMatch(why);
    }
  });

  test("an absurd size is refused from the header, before anything is allocated", async () => {
    // 60 bytes claiming 2^31-1 x 2^31-1 pixels: an allocation would throw a RangeError, not this.
    const bomb = patched(fixture("rgb24.bmp").subarray(0, 60), [[18, 0x7fffffff, 4], [22, 0x7fffffff, 4]]);
    const err = await failure(() => readBmp(bomb, "bomb.bmp", DEFAULT_MAX_PIXELS));
    expect(err.reason).toBe("too-many-pixels");
    expect(err.message).toBe(`bomb.bmp: 2147483647x2147483647 is ${2147483647 ** 2} pixels, more than the limit of ${DEFAULT_MAX_PIXELS}`);
    // The limit is the caller's: decode's maxPixels applies to a BMP as to any format.
    const small = await failure(() => decodeImage(fixture("rgb24.bmp"), { name: "a.bmp", maxPixels: 1000 }));
    expect([small.reason, small.message]).toEqual(["too-many-pixels", "image: 47x35 is 1645 pixels, more than the limit of 1000"]);
  });

  test("JPEG- and PNG-compressed BMPs (a printer format) are named as what imgd cannot decode", async () => {
    const err = await failure(() => readBmp(patched(fixture("rgb24.bmp"), [[30, 4, 4]]), "x.bmp", DEFAULT_MAX_PIXELS));
    expect([err.reason, err.message]).toEqual(["not-an-image", "x.bmp: a BMP with JPEG compression, which imgd cannot decode"]);
  });
});

describe("isBmp", () => {
  test("knows a BMP by its signature and header size, or by its signature and name", () => {
    const head = fixture("rgb24.bmp").subarray(0, 18);
    expect(isBmp("", head)).toBe(true);
    expect(isBmp("upload", fixture("os2-core-rgb24.bmp"))).toBe(true);
    expect(isBmp("scan.BMP", head)).toBe(true);
    const text = new TextEncoder().encode("BMW service record, 1998, scanned");
    expect(isBmp("notes.jpg", text)).toBe(false);
    expect(isBmp("notes.bmp", text)).toBe(true);
    // A PNG named .bmp is a PNG.
    expect(isBmp("photo.bmp", fixture("photo.png"))).toBe(false);
  });
});

describe("decodeImage and renderThumbnail of a BMP", () => {
  test("decode gives the same image as the PNG it was made from, by path, by bytes and by bytes under any name", async () => {
    const png = await decodeImage(join(FIXTURES, "photo.png"));
    const path = join(dir, "Scan0001.BMP");
    writeFileSync(path, fixture("rgb24.bmp"));
    for (const [input, name] of [[path, undefined], [fixture("rgb24.bmp"), "Scan0001.bmp"], [fixture("rgb24.bmp"), "upload"]] as const) {
      const bmp = await decodeImage(input, { name });
      expect(bmp.format).toBe("bmp");
      expect([bmp.width, bmp.height, bmp.sourceWidth, bmp.sourceHeight]).toEqual([png.width, png.height, png.sourceWidth, png.sourceHeight]);
      expect(Buffer.from(bmp.data).equals(Buffer.from(png.data))).toBe(true);
      expect(bmp.exif).toEqual(png.exif);
    }
    // With alpha: dropped without compositing, as for a PNG.
    const alpha = await decodeImage(fixture("v5-argb32.bmp"), { name: "a.bmp" });
    expect(Buffer.from(alpha.data).equals(Buffer.from((await decodeImage(join(FIXTURES, "photo-alpha.png"))).data))).toBe(true);
  });

  test("decode shrinks a large BMP on load like any other format", async () => {
    // Fixtures are kept small; this one is the photo scaled up by sharp and written out as plain 24-bit rows.
    const { data, info } = await sharp(join(FIXTURES, "photo.png")).resize(1200, 800).raw().toBuffer({ resolveWithObject: true });
    const bmp = bmp24(data, info.width, info.height);
    const png = await sharp(data, { raw: { width: 1200, height: 800, channels: 3 } }).png().toBuffer();
    const [a, b] = [await decodeImage(bmp, { targetShortSide: 224 }), await decodeImage(new Uint8Array(png), { targetShortSide: 224 })];
    expect([a.width, a.height]).toEqual([672, 448]);
    expect([a.sourceWidth, a.sourceHeight]).toEqual([1200, 800]);
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(true);
  });

  test("decode of a bad BMP says why, under its path", async () => {
    const path = join(dir, "cut.bmp");
    writeFileSync(path, fixture("rgb24.bmp").subarray(0, 2000));
    const err = await failure(() => decodeImage(path));
    expect(err.reason).toBe("truncated");
    expect(err.message).toStartWith(`${path}: the image data ends early (truncated file)`);
  });

  test("a thumbnail of a BMP is that of its PNG, alpha on white", async () => {
    for (const [bmp, png] of [["rgb24.bmp", "photo.png"], ["v5-argb32.bmp", "photo-alpha.png"], ["rle4.bmp", "photo-16.png"]]) {
      const path = join(dir, bmp);
      writeFileSync(path, fixture(bmp));
      const [a, b] = [await renderThumbnail(path, 128), await renderThumbnail(join(FIXTURES, png), 128)];
      expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
      expect(Buffer.from(await renderThumbnail(fixture(bmp), 128)).equals(Buffer.from(a))).toBe(true);
    }
    const err = await failure(() => renderThumbnail(fixture("rgb24.bmp").subarray(0, 100), 128));
    expect(err.reason).toBe("truncated");
  });
});
