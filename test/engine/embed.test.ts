import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CLIP_MEAN, CLIP_STD, COLOURS, generateTestClip } from "../../models/test/generate.ts";
import { attentionMask, ImageEmbedder, l2normalizeRows, TextEmbedder } from "../../src/engine/embed.ts";
import { resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { loadSharp } from "../../src/engine/native.ts";

const PHOTOS = join(import.meta.dir, "..", "..", "..", "shared", "photos");
const PHOTO_FILES = ["orange.jpg", "apple.jpg", "home.jpg", "smarties.png", "chelsea.png"];
const S = 224;
const D = 512;

let root: string;
let model: ResolvedModel;
let image: ImageEmbedder;
let photos: Float32Array;

async function photoPixels(file: string): Promise<Float32Array> {
  const { data } = await loadSharp()(join(PHOTOS, file))
    .removeAlpha()
    .resize(S, S, { fit: "cover" })
    .raw()
    .toBuffer({ resolveWithObject: true });
  const out = new Float32Array(3 * S * S);
  for (let p = 0; p < S * S; p++) {
    for (let c = 0; c < 3; c++) out[c * S * S + p] = (data[p * 3 + c]! / 255 - CLIP_MEAN[c]) / CLIP_STD[c];
  }
  return out;
}

function solidColour(rgb: readonly number[]): Float32Array {
  const out = new Float32Array(3 * S * S);
  for (let c = 0; c < 3; c++) out.fill((rgb[c]! - CLIP_MEAN[c]) / CLIP_STD[c], c * S * S, (c + 1) * S * S);
  return out;
}

function row(v: Float32Array, i: number): Float32Array {
  return v.subarray(i * D, (i + 1) * D);
}

function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Index of the image row that scores highest against the given text row. */
function bestImage(images: Float32Array, count: number, text: Float32Array): number {
  let best = -1;
  let bestScore = -Infinity;
  for (let i = 0; i < count; i++) {
    const s = dot(row(images, i), text);
    if (s > bestScore) [best, bestScore] = [i, s];
  }
  return best;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "imgd-embed-"));
  generateTestClip(join(root, "test-clip"));
  model = await resolveModel("test-clip", [root]);
  image = await ImageEmbedder.open(model, { threads: 2 });
  photos = concat(await Promise.all(PHOTO_FILES.map(photoPixels)));
});

afterAll(async () => {
  await image?.close();
  rmSync(root, { recursive: true, force: true });
});

describe("ImageEmbedder", () => {
  test("embeds a batch of real photos into unit-length rows of the manifest's width", async () => {
    const out = await image.embed(photos, PHOTO_FILES.length);
    expect(image.dims).toBe(512);
    expect(out.length).toBe(PHOTO_FILES.length * D);
    for (let i = 0; i < PHOTO_FILES.length; i++) expect(Math.sqrt(dot(row(out, i), row(out, i)))).toBeCloseTo(1, 5);
  });

  test("gives identical output for identical input", async () => {
    const a = await image.embed(photos, PHOTO_FILES.length);
    const b = await image.embed(photos, PHOTO_FILES.length);
    expect(Buffer.from(a.buffer).equals(Buffer.from(b.buffer))).toBe(true);
  });

  test("embeds each photo the same alone as inside a batch", async () => {
    const batch = await image.embed(photos, PHOTO_FILES.length);
    for (let i = 0; i < PHOTO_FILES.length; i++) {
      const single = await image.embed(photos.slice(i * 3 * S * S, (i + 1) * 3 * S * S), 1);
      const want = row(batch, i);
      const maxDiff = single.reduce((m, v, j) => Math.max(m, Math.abs(v - want[j]!)), 0);
      expect(maxDiff).toBeLessThan(1e-5);
    }
  });

  test("keeps different photos apart, so a photo's nearest neighbour is itself", async () => {
    const out = await image.embed(photos, PHOTO_FILES.length);
    for (let i = 0; i < PHOTO_FILES.length; i++) {
      expect(bestImage(out, PHOTO_FILES.length, row(out, i))).toBe(i);
      for (let j = 0; j < PHOTO_FILES.length; j++) if (j !== i) expect(dot(row(out, i), row(out, j))).toBeLessThan(0.99);
    }
  });

  test("rejects a pixel buffer whose length does not match the batch size", async () => {
    await expect(image.embed(new Float32Array(3 * S * S), 2)).rejects.toThrow(/needs 301056 floats/);
  });

  test("refuses to open a model file whose input name differs from the manifest", async () => {
    const wrong = { ...model, manifest: { ...model.manifest, image: { ...model.manifest.image, input: "images" } } };
    await expect(ImageEmbedder.open(wrong, {})).rejects.toThrow(/expected input "images".*inputs \[pixel_values\]/);
  });
});

describe("TextEmbedder", () => {
  const solid = concat(COLOURS.map((c) => solidColour(c.rgb)));

  function colourIds(words: number[][]): BigInt64Array {
    const ids = new BigInt64Array(words.length * 77);
    words.forEach((w, i) => ids.set([49406n, ...w.map(BigInt), 49407n], i * 77));
    return ids;
  }

  test("ranks the solid image of each colour first for that colour's token ids", async () => {
    const text = await TextEmbedder.open(model, { threads: 1 });
    try {
      const images = await image.embed(solid, COLOURS.length);
      const texts = await text.embedIds(colourIds(COLOURS.map((c) => [320, c.tokenIds[0]!])), COLOURS.length, 77);
      expect(texts.length).toBe(COLOURS.length * D);
      COLOURS.forEach((c, k) => expect(COLOURS[bestImage(images, COLOURS.length, row(texts, k))]!.name).toBe(c.name));
    } finally {
      await text.close();
    }
  });

  test("ranks yellow, orange and red solid images first for plain-English queries", async () => {
    const text = await TextEmbedder.open(model, { threads: 1 });
    try {
      const images = await image.embed(solid, COLOURS.length);
      const queries = ["a yellow car", "an orange", "a red dress"];
      const texts = await text.embed(queries);
      const ranked = queries.map((_, q) => COLOURS[bestImage(images, COLOURS.length, row(texts, q))]!.name);
      expect(ranked).toEqual(["yellow", "orange", "red"]);
      for (let q = 0; q < queries.length; q++) expect(Math.sqrt(dot(row(texts, q), row(texts, q)))).toBeCloseTo(1, 5);
    } finally {
      await text.close();
    }
  });

  test("ranks the orange photo above the blue-sky house for the word orange", async () => {
    const text = await TextEmbedder.open(model, { threads: 1 });
    try {
      const images = await image.embed(photos, PHOTO_FILES.length);
      const orange = await text.embedIds(colourIds([[4287]]), 1, 77);
      const blue = await text.embedIds(colourIds([[1746]]), 1, 77);
      const at = (f: string) => row(images, PHOTO_FILES.indexOf(f));
      expect(dot(at("orange.jpg"), orange)).toBeGreaterThan(dot(at("home.jpg"), orange));
      expect(PHOTO_FILES[bestImage(images, PHOTO_FILES.length, blue)]).toBe("home.jpg");
    } finally {
      await text.close();
    }
  });
});

describe("attentionMask", () => {
  test("covers each row up to and including its end-of-text token", () => {
    const ids = new BigInt64Array([49406n, 320n, 49407n, 0n, 49406n, 49407n, 0n, 0n]);
    expect([...attentionMask(ids, 4)]).toEqual([1n, 1n, 1n, 0n, 1n, 1n, 0n, 0n]);
  });
});

describe("l2normalizeRows", () => {
  test("scales rows to unit length and leaves an all-zero row at zero", () => {
    const v = new Float32Array([3, 4, 0, 0]);
    l2normalizeRows(v, 2);
    expect([...v]).toEqual([0.6000000238418579, 0.800000011920929, 0, 0]);
  });
});
