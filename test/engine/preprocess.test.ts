import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeImage } from "../../src/engine/decode.ts";
import { centerCropOffset, preprocess, preprocessInto, resizedSize } from "../../src/engine/preprocess.ts";
import type { DecodedImage, PreprocessSpec } from "../../src/engine/types.ts";

const PHOTOS = join(import.meta.dir, "../../../shared/photos");
const FIXTURES = join(import.meta.dir, "../fixtures/preprocess");

interface ReferenceCase {
  name: string;
  source: string;
  box: [number, number, number, number] | null;
  input: [number, number];
  resized: [number, number];
  crop: [number, number];
  channelMeans: [number, number, number];
  u8: string;
  f32: string | null;
}
const reference = JSON.parse(readFileSync(join(FIXTURES, "reference.json"), "utf8")) as {
  size: number;
  mean: [number, number, number];
  std: [number, number, number];
  cases: ReferenceCase[];
};
const CLIP: PreprocessSpec = {
  size: 224,
  interpolation: "bicubic",
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};
const referenceCase = (name: string) => reference.cases.find((c) => c.name === name)!;

function crop(img: DecodedImage, [x0, y0, x1, y1]: [number, number, number, number]): DecodedImage {
  const w = x1 - x0;
  const h = y1 - y0;
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) data.set(img.data.subarray(((y0 + y) * img.width + x0) * 3, ((y0 + y) * img.width + x1) * 3), y * w * 3);
  return { ...img, data, width: w, height: h };
}

async function referenceInput(c: ReferenceCase): Promise<DecodedImage> {
  const img = await decodeImage(join(PHOTOS, c.source));
  return c.box ? crop(img, c.box) : img;
}

/** What Pillow + ToTensor + Normalize give for the reference's 8-bit crop, in float32 as torch computes it. */
function normalizedReference(c: ReferenceCase): Float32Array {
  const u8 = new Uint8Array(readFileSync(join(FIXTURES, c.u8)));
  const plane = reference.size * reference.size;
  const out = new Float32Array(u8.length);
  for (let i = 0; i < u8.length; i++) {
    const ch = Math.floor(i / plane);
    out[i] = Math.fround(Math.fround(Math.fround(u8[i]! / 255) - Math.fround(CLIP.mean[ch]!)) / Math.fround(CLIP.std[ch]!));
  }
  return out;
}

function errors(a: Float32Array, b: Float32Array): { max: number; mean: number } {
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (d > max) max = d;
    sum += d;
  }
  return { max, mean: sum / a.length };
}

describe("preprocess against Pillow (reference made by test/fixtures/preprocess/make_reference.py)", () => {
  for (const name of ["camera", "motorcycle", "chelsea", "astronaut-crop"]) {
    test(`${name}: lossless input gives Pillow's resize + crop bit for bit (max abs error 0)`, async () => {
      const c = referenceCase(name);
      const img = await referenceInput(c);
      expect([img.width, img.height]).toEqual(c.input);
      const ours = preprocess(img, CLIP);
      const e = errors(ours, normalizedReference(c));
      expect(e.max).toBe(0);
    });
  }

  test("the normalised tensor equals numpy's float32 ToTensor + Normalize exactly", async () => {
    const c = referenceCase("motorcycle");
    const expected = new Float32Array(new Uint8Array(readFileSync(join(FIXTURES, c.f32!))).buffer);
    const ours = preprocess(await referenceInput(c), CLIP);
    expect(ours.length).toBe(expected.length);
    expect(errors(ours, expected).max).toBe(0);
    for (let ch = 0; ch < 3; ch++) {
      const plane = ours.subarray(ch * 224 * 224, (ch + 1) * 224 * 224);
      expect(plane.reduce((s, v) => s + v, 0) / plane.length).toBeCloseTo(c.channelMeans[ch]!, 5);
    }
  });

  test("a JPEG decoded by sharp instead of Pillow stays within 0.1 max and 0.01 mean abs error", async () => {
    // libjpeg-turbo (Pillow) and mozjpeg (sharp) differ in IDCT and chroma upsampling, by a few levels per pixel.
    const c = referenceCase("messi");
    const ours = preprocess(await referenceInput(c), CLIP);
    const e = errors(ours, normalizedReference(c));
    expect(e.max).toBeLessThan(0.1);
    expect(e.mean).toBeLessThan(0.01);
  });
});

describe("preprocess geometry", () => {
  test("the short side becomes size and the long side is truncated, as torchvision's Resize does", () => {
    expect(resizedSize(741, 500, 224)).toEqual({ width: 331, height: 224 });
    expect(resizedSize(300, 451, 224)).toEqual({ width: 224, height: 336 });
    expect(resizedSize(160, 120, 224)).toEqual({ width: 298, height: 224 });
  });

  test("centre-crop offsets round halves to even, as Python's round does", () => {
    expect(centerCropOffset(331, 224)).toBe(54);
    expect(centerCropOffset(225, 224)).toBe(0);
    expect(centerCropOffset(227, 224)).toBe(2);
    expect(centerCropOffset(298, 224)).toBe(37);
  });

  test("the fixture's resized sizes and crop offsets agree with ours", () => {
    for (const c of reference.cases) {
      const r = resizedSize(c.input[0], c.input[1], reference.size);
      expect([r.width, r.height]).toEqual(c.resized);
      expect([centerCropOffset(r.width, 224), centerCropOffset(r.height, 224)]).toEqual(c.crop);
    }
  });

  test("an image already at size x size is only normalised", () => {
    const size = 4;
    const data = new Uint8Array(size * size * 3).map((_, i) => (i * 37) % 256);
    const img: DecodedImage = { data, width: size, height: size, sourceWidth: size, sourceHeight: size, format: "raw", exif: { takenAt: null, cameraMake: null, cameraModel: null } };
    const out = preprocess(img, { ...CLIP, size });
    expect(out[0]).toBeCloseTo((data[0]! / 255 - CLIP.mean[0]) / CLIP.std[0], 5);
    expect(out[size * size + 1]).toBeCloseTo((data[4]! / 255 - CLIP.mean[1]) / CLIP.std[1], 5);
  });

  test("preprocessInto writes 3 x size x size floats at the offset and nothing around them", async () => {
    const img = await decodeImage(join(PHOTOS, "chelsea.png"));
    const n = 3 * 224 * 224;
    const out = new Float32Array(2 * n + 10).fill(123);
    preprocessInto(img, CLIP, out, n + 5);
    expect(out[n + 4]).toBe(123);
    expect(out[2 * n + 5]).toBe(123);
    expect(Array.from(out.subarray(n + 5, 2 * n + 5))).toEqual(Array.from(preprocess(img, CLIP)));
  });

  test("bilinear interpolation is supported and differs from bicubic", async () => {
    const img = await decodeImage(join(PHOTOS, "coffee.png"));
    const cubic = preprocess(img, CLIP);
    const linear = preprocess(img, { ...CLIP, interpolation: "bilinear" });
    const e = errors(cubic, linear);
    expect(e.mean).toBeGreaterThan(0);
    expect(e.mean).toBeLessThan(0.05);
  });
});
