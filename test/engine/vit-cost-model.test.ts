import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateVitCost, MACS_PER_IMAGE } from "../../models/test/generate-vit-cost.ts";
import { ImageEmbedder } from "../../src/engine/embed.ts";
import { resolveModel, type ResolvedModel } from "../../src/engine/models.ts";

const S = 224;
const D = 512;

let root: string;
let written: { path: string; written: boolean }[];
let model: ResolvedModel;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "imgd-vit-cost-"));
  written = generateVitCost(root);
  model = await resolveModel("vit-cost", [root]);
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

test("the generator writes a manifest and both towers that resolveModel finds", () => {
  expect(written.every((f) => f.written)).toBe(true);
  expect(model.manifest.name).toBe("vit-cost");
  expect(model.manifest.dims).toBe(D);
  expect(model.manifest.preprocess.size).toBe(S);
  expect(model.imagePath).toBe(join(root, "vit-cost", "image.onnx"));
});

test("a second run produces identical bytes and leaves every file alone", () => {
  expect(generateVitCost(root).map((f) => f.written)).toEqual([false, false, false]);
});

test("the image file stays small because the blocks share weights", () => {
  expect(statSync(model.imagePath).size).toBeLessThan(30e6);
});

test("the model does the CLIP ViT-B/32 image tower's arithmetic, about 4.4 GMACs per image", () => {
  expect(MACS_PER_IMAGE / 1e9).toBeCloseTo(4.41, 1);
});

test("onnxruntime runs it with the CLIP image-tower signature: pixel_values [n,3,224,224] -> image_embeds [n,512]", async () => {
  const embedder = await ImageEmbedder.open(model, { threads: 2 });
  try {
    const pixels = new Float32Array(2 * 3 * S * S);
    for (let i = 0; i < pixels.length; i++) pixels[i] = i < 3 * S * S ? Math.sin(i) : Math.cos(i / 7);
    const rows = await embedder.embed(pixels, 2);
    expect(rows.length).toBe(2 * D);
    expect(rows.every(Number.isFinite)).toBe(true);
    const first = rows.subarray(0, D);
    const second = rows.subarray(D);
    expect(Math.hypot(...first)).toBeCloseTo(1, 4);
    expect(first).not.toEqual(second);
  } finally {
    await embedder.close();
  }
});
