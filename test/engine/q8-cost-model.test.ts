import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InferenceSession } from "onnxruntime-node";
import { buildQ8Image, buildQ8Text, NAME, Q8_COST_SHAPES, type ImageTowerSizes, type TextTowerSizes } from "../../models/test/generate-q8-cost.ts";
import { BUILT_IN_MANIFESTS, parseManifest } from "../../src/engine/models.ts";
import { loadOrt } from "../../src/engine/native.ts";
import { openOnnxSession } from "../../src/engine/onnx-session.ts";

// The generator's own graph code at toy sizes: the same ops and wiring as the 150 MB towers, built in milliseconds.
const IMAGE: ImageTowerSizes = { image: 64, patch: 32, width: 32, heads: 4, layers: 2, dims: 16 };
const TEXT: TextTowerSizes = { context: 77, vocab: 1000, width: 32, heads: 4, layers: 2, dims: 16 };
const START = 998;
const END = 999;

let root: string;
let image: InferenceSession;
let text: InferenceSession;
const ort = loadOrt();

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "imgd-q8-cost-"));
  writeFileSync(join(root, "image.onnx"), buildQ8Image(IMAGE).bytes);
  writeFileSync(join(root, "text.onnx"), buildQ8Text(TEXT).bytes);
  image = await openOnnxSession(join(root, "image.onnx"));
  text = await openOnnxSession(join(root, "text.onnx"));
});

afterAll(async () => {
  await image?.release();
  await text?.release();
  rmSync(root, { recursive: true, force: true });
});

/** Rows of [START, ...words, END] padded with 0 to `width`. */
function ids(rows: number[][], width: number) {
  const data = new BigInt64Array(rows.length * width);
  rows.forEach((words, r) => [START, ...words, END].forEach((id, i) => (data[r * width + i] = BigInt(id))));
  return new ort.Tensor("int64", data, [rows.length, width]);
}

async function embedTexts(rows: number[][], width: number): Promise<Float32Array[]> {
  const out = (await text.run({ input_ids: ids(rows, width) })).text_embeds!;
  expect(out.dims).toEqual([rows.length, TEXT.dims]);
  const data = out.data as Float32Array;
  return rows.map((_, r) => data.slice(r * TEXT.dims, (r + 1) * TEXT.dims));
}

const cosine = (a: Float32Array, b: Float32Array) => {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot / Math.hypot(...a) / Math.hypot(...b);
};

describe("clip-q8-cost generator", () => {
  test("at ViT-B/32's sizes the towers have CLIP ViT-B/32's parameter counts, about one byte each", () => {
    const img = buildQ8Image();
    expect(img.params).toBe(87_849_216);
    expect(img.bytes.length / img.params).toBeGreaterThan(1);
    expect(img.bytes.length / img.params).toBeLessThan(1.02);
    const txt = buildQ8Text();
    expect(txt.params).toBe(63_428_096);
    expect(txt.bytes.length / txt.params).toBeLessThan(1.02);
  });

  test("the smaller stand-ins have the parameters their models' names give (TinyCLIP ViT-61M/32 Text-29M, ...)", () => {
    for (const [name, shape] of Object.entries(Q8_COST_SHAPES)) {
      if (name === NAME || shape.published) continue;
      const [, vision, text] = shape.of.match(/ViT-(\d+)M\/32 Text-(\d+)M/)!;
      const img = buildQ8Image(shape.image, name);
      expect(Math.round(img.params / 1e6)).toBe(Number(vision));
      // A name's text count leaves out the token table.
      const t = shape.text;
      expect(Math.round((buildQ8Text(t, name).params - t.vocab * t.width) / 1e6)).toBe(Number(text));
    }
  });

  test("a stand-in for another design holds its published parameter counts within 3 % (MobileCLIP-S0: 11.4M + 42.4M)", () => {
    const others = Object.entries(Q8_COST_SHAPES).filter(([, shape]) => shape.published);
    expect(others.map(([name]) => name)).toContain("mobileclip-s0-q8-cost");
    for (const [name, shape] of others) {
      const image = buildQ8Image(shape.image, name).params / 1e6;
      const text = buildQ8Text(shape.text, name).params / 1e6;
      expect(Math.abs(image / shape.published!.image - 1)).toBeLessThan(0.03);
      expect(Math.abs(text / shape.published!.text - 1)).toBeLessThan(0.03);
    }
  });

  test("every weight matrix goes through quantize_dynamic's integer ops", () => {
    const img = buildQ8Image(IMAGE);
    const txt = buildQ8Text(TEXT);
    // Four per block (QKV, attention out, MLP in, MLP out) and the projection.
    expect(img.ops.get("MatMulInteger")).toBe(4 * IMAGE.layers + 1);
    expect(txt.ops.get("MatMulInteger")).toBe(4 * TEXT.layers + 1);
    expect(img.ops.get("ConvInteger")).toBe(1);
    expect(img.ops.get("DynamicQuantizeLinear")).toBe(4 * IMAGE.layers + 2);
    expect(txt.ops.get("DequantizeLinear")).toBe(1);
    expect(buildQ8Text(TEXT).bytes).toEqual(txt.bytes);
  });

  test("onnxruntime runs the image tower: pixel_values [n,3,S,S] -> finite image_embeds [n,dims]", async () => {
    const S = IMAGE.image;
    const pixels = new Float32Array(2 * 3 * S * S);
    for (let i = 0; i < pixels.length; i++) pixels[i] = i < 3 * S * S ? Math.sin(i) : Math.cos(i / 7);
    const out = (await image.run({ pixel_values: new ort.Tensor("float32", pixels, [2, 3, S, S]) })).image_embeds!;
    expect(out.dims).toEqual([2, IMAGE.dims]);
    const data = out.data as Float32Array;
    expect(data.every(Number.isFinite)).toBe(true);
    expect(cosine(data.subarray(0, IMAGE.dims), data.subarray(IMAGE.dims))).toBeLessThan(0.99);
  });

  test("a tower opened without weight prepacking (a one-run query) computes the same embeddings", async () => {
    const S = IMAGE.image;
    const pixels = Float32Array.from({ length: 3 * S * S }, (_, i) => Math.sin(i / 3));
    const feeds = { pixel_values: new ort.Tensor("float32", pixels, [1, 3, S, S]) };
    const oneShot = await openOnnxSession(join(root, "image.onnx"), { prepack: false, threads: 2 });
    try {
      const a = (await image.run(feeds)).image_embeds!.data as Float32Array;
      const b = (await oneShot.run(feeds)).image_embeds!.data as Float32Array;
      expect(b.length).toBe(IMAGE.dims);
      expect(Math.max(...a.map((v, i) => Math.abs(v - b[i]!)))).toBeLessThan(1e-4);
    } finally {
      await oneShot.release();
    }
  });

  test("the text tower takes any sequence length and pools at the end token", async () => {
    const rows = [[5], [17, 250, 3, 41], [600, 7]];
    const longest = await embedTexts(rows, 6);
    const padded = await embedTexts(rows, TEXT.context);
    for (const row of [...longest, ...padded]) expect(row.every(Number.isFinite)).toBe(true);
    // Activations are quantized per tensor, over the padding too, so the two agree closely rather than exactly.
    for (let r = 0; r < rows.length; r++) expect(cosine(longest[r]!, padded[r]!)).toBeGreaterThan(0.999);
    expect(cosine(longest[0]!, longest[1]!)).toBeLessThan(0.99);
  });
});

describe("clip-vit-b32-q8 manifest", () => {
  const q8 = parseManifest(JSON.parse(readFileSync(join(import.meta.dir, "../../models/clip-vit-b32-q8.json"), "utf8")), "clip-vit-b32-q8.json");
  const fp32 = BUILT_IN_MANIFESTS.find((m) => m.name === "clip-vit-b32")!;

  test("validates and names Xenova's quantized exports", () => {
    expect(q8.image.url).toEndWith("/onnx/vision_model_quantized.onnx");
    expect(q8.text.url).toEndWith("/onnx/text_model_quantized.onnx");
    expect(q8.image.url).toStartWith("https://huggingface.co/Xenova/clip-vit-base-patch32/resolve/");
  });

  test("feeds the towers exactly as clip-vit-b32 does", () => {
    expect(q8.dims).toBe(fp32.dims);
    expect(q8.preprocess).toEqual(fp32.preprocess);
    expect(q8.tokenizer).toEqual(fp32.tokenizer);
    expect([q8.image.input, q8.image.output, q8.text.input, q8.text.output]).toEqual([fp32.image.input, fp32.image.output, fp32.text.input, fp32.text.output]);
  });
});
