// Writes "text-cost": a model whose text tower has the CLIP ViT-B/32 text transformer's signature, compute and
// weight size (12 causal blocks of width 512, ~3 GMACs per text at 77 tokens, 63M parameters) with random weights.
// test-clip's text tower costs ~0.1 ms, so a server bench over it cannot show what micro-batching or padding do for
// real queries; this one costs what the real text tower costs. Its image tower is test-clip's (the server opens it
// only for image queries).
//
//   bun models/test/generate-text-cost.ts [modelsDir]     (default .bench/models/: text-cost.json + text-cost/)
//
// Like the real tower it takes any sequence length up to 77 (position embeddings and the causal mask are sliced to
// the input's width) and pools at the end-of-text token, so padding a batch to its longest text gives the same
// embeddings as padding to 77. Every block has its own weight matrices and the token table has all 49408 rows: a
// short query is bound by streaming ~250 MB of weights from memory, as with the real tower, which shared weights
// (small enough to stay in cache) would hide. The file is ~250 MB; it is only generated for benchmarks.
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { generateTestClip, writeIfChanged } from "./generate.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph } from "./onnx-writer.ts";
import { graphBuilder, transformerBlocks, uniformWeights } from "./transformer-cost.ts";

export const NAME = "text-cost";
/** CLIP's context length: the longest input the position embeddings cover. */
export const CONTEXT_LENGTH = 77;
const SEED = 0x7e87;

export interface TextTowerSizes {
  layers: number;
  width: number;
  heads: number;
  /** Rows of the token table; ids are folded modulo this, which is the identity for the full 49408-row table. */
  tableRows: number;
  /** Width of the projected embedding. */
  dims: number;
}

/** OpenAI CLIP ViT-B/32's text tower. */
export const CLIP_B32_TEXT: TextTowerSizes = { layers: 12, width: 512, heads: 8, tableRows: 49408, dims: 512 };

/** Weights each block has its own copy of; biases, LayerNorm parameters and constants (a few KB) stay shared. */
const PER_LAYER_WEIGHTS = new Set(["qkv_w", "out_w", "mlp_fc", "mlp_proj"]);

/** Multiply-accumulates for one text of `tokens` ids (start and end included): the blocks and the projection. */
export function macsPerText(tokens: number, s: TextTowerSizes = CLIP_B32_TEXT): number {
  const mlp = 4 * s.width;
  const headDim = s.width / s.heads;
  const block =
    tokens * s.width * 3 * s.width + 2 * s.heads * tokens * tokens * headDim + tokens * s.width * s.width + 2 * tokens * s.width * mlp;
  return s.layers * block + s.width * s.dims;
}

/** At the full 77 tokens (padding to max_length); a batch padded to its longest text costs macsPerText(that width). */
export const MACS_PER_TEXT = macsPerText(CONTEXT_LENGTH);

function initializers(s: TextTowerSizes) {
  const rand = mulberry32(SEED);
  const w = (name: string, dims: number[], fanIn: number) =>
    floatTensor(name, dims, uniformWeights(rand, dims.reduce((a, b) => a * b, 1), 0.5 / Math.sqrt(fanIn)));
  const mlp = 4 * s.width;
  // CLIP's text transformer is causal: token i attends to tokens 0..i.
  const causal = new Float32Array(CONTEXT_LENGTH * CONTEXT_LENGTH);
  for (let i = 0; i < CONTEXT_LENGTH; i++) for (let j = i + 1; j < CONTEXT_LENGTH; j++) causal[i * CONTEXT_LENGTH + j] = -1e4;
  const layers = Array.from({ length: s.layers }, (_, l) => [
    w(`l${l}_qkv_w`, [s.width, 3 * s.width], s.width),
    w(`l${l}_out_w`, [s.width, s.width], s.width),
    w(`l${l}_mlp_fc`, [s.width, mlp], s.width),
    w(`l${l}_mlp_proj`, [mlp, s.width], mlp),
  ]);
  return [
    w("token_emb", [s.tableRows, s.width], 1),
    w("pos_emb", [1, CONTEXT_LENGTH, s.width], 1),
    ...layers.flat(),
    w("proj_w", [s.width, s.dims], s.width),
    floatTensor("causal_mask", [CONTEXT_LENGTH, CONTEXT_LENGTH], causal),
    floatTensor("qkv_b", [3 * s.width], new Float32Array(3 * s.width)),
    floatTensor("out_b", [s.width], new Float32Array(s.width)),
    floatTensor("fc_b", [mlp], new Float32Array(mlp)),
    floatTensor("fc2_b", [s.width], new Float32Array(s.width)),
    floatTensor("ln_g", [s.width], new Float32Array(s.width).fill(1)),
    floatTensor("ln_b", [s.width], new Float32Array(s.width)),
    floatTensor("attn_scale", [], [1 / Math.sqrt(s.width / s.heads)]),
    floatTensor("gelu_k", [], [1.702]),
    int64Tensor("table_rows", [], [s.tableRows]),
    // 0 keeps the batch, -1 takes the sequence length from the input.
    int64Tensor("qkv_shape", [5], [0, -1, 3, s.heads, s.width / s.heads]),
    int64Tensor("merge_shape", [3], [0, -1, s.width]),
    int64Tensor("idx0", [], [0]),
    int64Tensor("idx1", [], [1]),
    int64Tensor("idx2", [], [2]),
    int64Tensor("start0", [1], [0]),
    int64Tensor("start00", [2], [0, 0]),
    int64Tensor("axis1", [1], [1]),
    int64Tensor("axes01", [2], [0, 1]),
  ];
}

/** The text tower for `sizes`; tests build a tiny one with the same code. */
export function textCostGraph(sizes: TextTowerSizes = CLIP_B32_TEXT): Graph {
  if (sizes.width % sizes.heads !== 0) throw new Error(`width ${sizes.width} is not a multiple of ${sizes.heads} heads`);
  const builder = graphBuilder();
  const { nodes, op, layerNorm } = builder;

  // Position embeddings and the causal mask cover 77 tokens; the input may be narrower.
  op("Shape", ["input_ids"], "seq_len", { start: 1, end: 2 });
  op("Slice", ["pos_emb", "start0", "seq_len", "axis1"], "pos");
  op("Concat", ["seq_len", "seq_len"], "mask_ends", { axis: 0 });
  op("Slice", ["causal_mask", "start00", "mask_ends", "axes01"], "causal");
  op("Mod", ["input_ids", "table_rows"], "rows");
  op("Gather", ["token_emb", "rows"], "tokens", { axis: 0 });
  let x = op("Add", ["tokens", "pos"], "embedded");

  const weightName = (name: string, layer: number) => (PER_LAYER_WEIGHTS.has(name) ? `l${layer}_${name}` : name);
  x = transformerBlocks(builder, x, sizes.layers, { mask: "causal", weightName });

  // Pool at the end-of-text token, as CLIP does: it has the highest id (49407), so ArgMax over the ids finds it.
  op("ArgMax", ["input_ids"], "eot_at", { axis: 1, keepdims: 1 });
  op("GatherND", [x, "eot_at"], "eot_token", { batch_dims: 1 });
  layerNorm("eot_token", "pooled");
  op("MatMul", ["pooled", "proj_w"], "text_embeds");

  return {
    name: "text_cost_text",
    inputs: [{ name: "input_ids", elemType: DataType.INT64, shape: ["batch", "sequence"] }],
    outputs: [{ name: "text_embeds", elemType: DataType.FLOAT, shape: ["batch", sizes.dims] }],
    initializers: initializers(sizes),
    nodes,
  };
}

export function buildTextCost(sizes: TextTowerSizes = CLIP_B32_TEXT): Uint8Array {
  return encodeModel(textCostGraph(sizes), {
    irVersion: 8,
    opset: 17,
    producerName: "imgd models/test/generate-text-cost.ts",
    docString: "text-cost: CLIP ViT-B/32 text tower shapes, compute and weight size, random weights; for benchmarks only",
  });
}

function manifest(dims: number): object {
  const testClip = JSON.parse(readFileSync(join(import.meta.dir, "..", "test-clip.json"), "utf8"));
  return {
    name: NAME,
    description: "Benchmark stand-in: CLIP ViT-B/32 text-tower compute and weight size with random weights; test-clip's image tower",
    dims,
    license: "MIT (generated by imgd)",
    source: "models/test/generate-text-cost.ts",
    generate: "bun models/test/generate-text-cost.ts",
    image: testClip.image,
    text: { file: "text.onnx", input: "input_ids", output: "text_embeds" },
    preprocess: testClip.preprocess,
    // Causal with end-of-text pooling, so padding to the longest text of a batch is exact.
    tokenizer: { ...testClip.tokenizer, padding: "longest" },
  };
}

/** Writes `<modelsDir>/text-cost.json` and `<modelsDir>/text-cost/{image,text}.onnx`; identical files are left alone. */
export function generateTextCost(modelsDir: string, sizes: TextTowerSizes = CLIP_B32_TEXT): { path: string; written: boolean }[] {
  const dir = join(modelsDir, NAME);
  mkdirSync(dir, { recursive: true });
  const testClipDir = join(import.meta.dir, "..", "test-clip");
  generateTestClip(testClipDir);
  const json = new TextEncoder().encode(`${JSON.stringify(manifest(sizes.dims), null, 2)}\n`);
  const files: [string, Uint8Array][] = [
    [join(modelsDir, `${NAME}.json`), json],
    [join(dir, "image.onnx"), readFileSync(join(testClipDir, "image.onnx"))],
    [join(dir, "text.onnx"), buildTextCost(sizes)],
  ];
  return files.map(([path, bytes]) => ({ path, written: writeIfChanged(path, bytes) }));
}

if (import.meta.main) {
  const modelsDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "..", ".bench", "models"));
  for (const r of generateTextCost(modelsDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  const gmacs = (tokens: number) => (macsPerText(tokens) / 1e9).toFixed(2);
  console.log(`${gmacs(CONTEXT_LENGTH)} GMACs per text at ${CONTEXT_LENGTH} tokens (max_length), ${gmacs(8)} at 8 tokens`);
}
