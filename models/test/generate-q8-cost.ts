// Writes "clip-q8-cost": both CLIP ViT-B/32 towers as the int8 exports users pull (models/clip-vit-b32-q8.json,
// Xenova's *_quantized.onnx) are built: the same shapes, parameter counts and integer ops, with random weights.
// The real files cannot be downloaded here, and `imgd serve`'s memory with real-sized towers loaded is a goal
// (issue 4): this model holds as many weight bytes in onnxruntime and does the same int8 work. The smaller shapes
// in Q8_COST_SHAPES say what a smaller CLIP of the same design would hold instead.
//
//   bun models/test/generate-q8-cost.ts [modelsDir] [--shape NAME]
//     (default .bench/models/ and clip-q8-cost: clip-q8-cost.json + clip-q8-cost/)
//
// Every weight matrix is its own tensor (per layer, nothing shared) in the form onnxruntime's quantize_dynamic
// writes: x -> DynamicQuantizeLinear -> MatMulInteger(x_q, W_q, x_zero, W_zero) -> Cast -> Mul(x_scale * W_scale),
// then the float bias. Weights are 7-bit with a scale and zero point per output column (quantize_dynamic with
// per_channel and reduce_range, the defaults of transformers.js's convert script); uint8 for the image tower, int8
// for the text tower, as that script chooses (uint8 when the graph has a Conv). The patch Conv is a ConvInteger with
// one zero point (onnxruntime's ConvInteger takes no per-channel zero point). The 49408x512 token table is 8-bit and
// dequantized after the Gather, as quantize_dynamic does for Gather: in fp32 it alone would be 101 MB, more than the
// whole published 64.5 MB text file. Attention's two activation-by-activation MatMuls stay fp32 (no weights, 1-2 %
// of the MACs). Biases, LayerNorms, the class token and the position tables stay fp32 (under 1 MB in all).
import { mkdirSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { writeIfChanged } from "./generate.ts";
import {
  DataType,
  encodeModel,
  floatTensor,
  int64Tensor,
  int8Tensor,
  uint8Tensor,
  type Graph,
  type Node,
  type Tensor,
} from "./onnx-writer.ts";
import { attentionHeads, uniformWeights } from "./transformer-cost.ts";

export const NAME = "clip-q8-cost";

export interface ImageTowerSizes {
  image: number;
  patch: number;
  width: number;
  heads: number;
  layers: number;
  dims: number;
}

export interface TextTowerSizes {
  context: number;
  vocab: number;
  width: number;
  heads: number;
  layers: number;
  dims: number;
}

/** openai/clip-vit-base-patch32: 87,849,216 image and 63,428,096 text parameters. */
export const VIT_B32_IMAGE: ImageTowerSizes = { image: 224, patch: 32, width: 768, heads: 12, layers: 12, dims: 512 };
export const VIT_B32_TEXT: TextTowerSizes = { context: 77, vocab: 49408, width: 512, heads: 8, layers: 12, dims: 512 };

export interface Q8CostShape {
  /** The model the stand-in has the shapes of. */
  of: string;
  image: ImageTowerSizes;
  text: TextTowerSizes;
  /** The model's own text padding where it is not CLIP's "longest" (a text tower that is not causal). */
  padding?: "max_length";
  /** Published parameter counts (millions, token table included) where `of` does not spell them as TinyCLIP's do. */
  published?: { image: number; text: number };
}

/**
 * Stand-ins by model name. The TinyCLIP ones follow microsoft/Cream's open_clip configs (TinyCLIP-ViT-61M-32-Text-29M,
 * TinyCLIP-40M: 62.4 and 59.8 % ImageNet zero-shot against ViT-B/32's 63.2); no ONNX export of them is published.
 */
export const Q8_COST_SHAPES: Record<string, Q8CostShape> = {
  [NAME]: { of: "CLIP ViT-B/32", image: VIT_B32_IMAGE, text: VIT_B32_TEXT },
  "tinyclip-61m-q8-cost": {
    of: "TinyCLIP ViT-61M/32 Text-29M",
    image: { ...VIT_B32_IMAGE, width: 640, heads: 10 },
    text: { ...VIT_B32_TEXT, layers: 9 },
  },
  "tinyclip-40m-q8-cost": {
    of: "TinyCLIP ViT-40M/32 Text-19M",
    image: { ...VIT_B32_IMAGE, width: 512, heads: 8 },
    text: { ...VIT_B32_TEXT, layers: 6 },
  },
  // MobileCLIP-S0's image tower is a conv/attention hybrid (MCi0) at 256 px; this keeps its parameter count (11.4M
  // image, 42.4M text per apple/ml-mobileclip; Xenova's int8 files are 11.8 and 42.8 MB), which is what memory
  // depends on, in the ViT design above. Its text tower is not causal, so every query runs at 77 tokens.
  "mobileclip-s0-q8-cost": {
    of: "MobileCLIP-S0 (parameter counts)",
    image: { image: 256, patch: 32, width: 272, heads: 4, layers: 12, dims: 512 },
    text: { ...VIT_B32_TEXT, layers: 5 },
    padding: "max_length",
    published: { image: 11.4, text: 42.4 },
  },
};

export function isQ8Cost(name: string): boolean {
  return Object.hasOwn(Q8_COST_SHAPES, name);
}

const IMAGE_SEED = 0x98c1;
const TEXT_SEED = 0x98c2;
/** 7-bit weights (reduce_range): uint8 0..127 around zero point 64, int8 -64..63 around 0; this is their spread. */
const Q_STD = Math.sqrt((128 * 128 - 1) / 12);

export interface BuiltTower {
  bytes: Uint8Array;
  /** Learned values (weights, biases, norms, tables), not quantization scales or constants. */
  params: number;
  ops: Map<string, number>;
}

type WeightType = "uint8" | "int8";

const count = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** Uniform 7-bit values, four per draw: the towers hold ~150M of them. */
function sevenBit(rand: () => number, n: number, type: WeightType): Uint8Array | Int8Array {
  const u = new Uint8Array(n);
  for (let i = 0; i < n; i += 4) {
    const r = (rand() * 4294967296) >>> 0;
    u[i] = r & 0x7f;
    u[i + 1] = (r >>> 8) & 0x7f;
    u[i + 2] = (r >>> 16) & 0x7f;
    u[i + 3] = (r >>> 24) & 0x7f;
  }
  if (type === "uint8") return u;
  const s = new Int8Array(u.buffer);
  for (let i = 0; i < n; i++) s[i] = u[i]! - 64;
  return s;
}

function towerBuilder(rand: () => number, weights: WeightType) {
  const nodes: Node[] = [];
  const initializers: Tensor[] = [];
  let params = 0;
  const node = (opType: string, inputs: string[], outputs: string[], attributes?: Node["attributes"]) => {
    nodes.push({ opType, inputs, outputs, attributes });
    return outputs[0]!;
  };
  const op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) =>
    node(opType, inputs, [output], attributes);
  const constant = (t: Tensor) => {
    initializers.push(t);
    return t.name;
  };
  const param = (t: Tensor) => {
    params += count(t.dims);
    return constant(t);
  };
  const floats = (name: string, dims: number[], std: number) => param(floatTensor(name, dims, uniformWeights(rand, count(dims), std)));
  const filled = (name: string, n: number, v: number) => param(floatTensor(name, [n], new Float32Array(n).fill(v)));
  const quantized = (name: string, dims: number[], type = weights) => {
    const values = sevenBit(rand, count(dims), type);
    return param(values instanceof Uint8Array ? uint8Tensor(name, dims, values) : int8Tensor(name, dims, values));
  };
  const zeroPoint = (name: string, dims: number[], type = weights) =>
    constant(type === "uint8" ? uint8Tensor(name, dims, new Uint8Array(count(dims)).fill(64)) : int8Tensor(name, dims, new Int8Array(count(dims))));
  const layerNorm = (x: string, name: string, width: number) =>
    op("LayerNormalization", [x, filled(`${name}_g`, width, 1), filled(`${name}_b`, width, 0)], name, { axis: -1, epsilon: { float: 1e-5 } });

  /** x [.., rows] -> [.., cols] as quantize_dynamic writes a MatMul, with `rows x cols` 7-bit weights per column. */
  const qMatMul = (x: string, name: string, rows: number, cols: number, { bias = true, out = name } = {}) => {
    const w = quantized(`${name}_w`, [rows, cols]);
    // 1/sqrt(fan_in) keeps each projection's output near unit scale, as in the fp32 stand-ins.
    const wScale = constant(floatTensor(`${name}_w_scale`, [cols], new Float32Array(cols).fill(0.5 / Math.sqrt(rows) / Q_STD)));
    const wZero = zeroPoint(`${name}_w_zero`, [cols]);
    const [xq, xScale, xZero] = [`${name}_x_q`, `${name}_x_scale`, `${name}_x_zero`];
    node("DynamicQuantizeLinear", [x], [xq, xScale, xZero]);
    op("MatMulInteger", [xq, w, xZero, wZero], `${name}_int`);
    op("Cast", [`${name}_int`], `${name}_float`, { to: DataType.FLOAT });
    op("Mul", [xScale, wScale], `${name}_scale`);
    const y = op("Mul", [`${name}_float`, `${name}_scale`], bias ? `${name}_mm` : out);
    return bias ? op("Add", [y, filled(`${name}_b`, cols, 0)], out) : y;
  };

  /** `layers` pre-LN blocks with their own weights, QuickGELU MLP; `mask` is added to the attention scores. */
  const transformer = (input: string, layers: number, width: number, heads: number, mask?: string) => {
    const headDim = width / heads;
    constant(int64Tensor("qkv_shape", [5], [0, 0, 3, heads, headDim]));
    constant(int64Tensor("merge_shape", [3], [0, 0, width]));
    for (const i of [0, 1, 2]) constant(int64Tensor(`idx${i}`, [], [i]));
    constant(floatTensor("attn_scale", [], [1 / Math.sqrt(headDim)]));
    constant(floatTensor("gelu_k", [], [1.702]));
    let x = input;
    for (let l = 0; l < layers; l++) {
      const p = (s: string) => `l${l}_${s}`;
      const qkv = qMatMul(layerNorm(x, p("ln1"), width), p("qkv"), width, 3 * width);
      const ctx = attentionHeads(op, p, qkv, mask);
      op("Add", [x, qMatMul(ctx, p("attn_out"), width, width)], p("x_attn"));
      const fc = qMatMul(layerNorm(p("x_attn"), p("ln2"), width), p("fc"), width, 4 * width);
      op("Mul", [fc, "gelu_k"], p("gelu_in"));
      op("Sigmoid", [p("gelu_in")], p("gelu_gate"));
      op("Mul", [fc, p("gelu_gate")], p("gelu"));
      x = op("Add", [p("x_attn"), qMatMul(p("gelu"), p("fc2"), 4 * width, width)], p("out"));
    }
    return x;
  };

  const finish = (graph: Omit<Graph, "nodes" | "initializers">, docString: string): BuiltTower => {
    const bytes = encodeModel(
      { ...graph, nodes, initializers },
      { irVersion: 8, opset: 17, producerName: "imgd models/test/generate-q8-cost.ts", docString },
    );
    const ops = new Map<string, number>();
    for (const n of nodes) ops.set(n.opType, (ops.get(n.opType) ?? 0) + 1);
    return { bytes, params, ops };
  };

  return { node, op, constant, param, floats, quantized, zeroPoint, layerNorm, qMatMul, transformer, finish };
}

/** pixel_values [batch,3,S,S] -> image_embeds [batch,dims]: ViT with a class token, pre- and post-LN, projection. */
export function buildQ8Image(s: ImageTowerSizes = VIT_B32_IMAGE, name = NAME): BuiltTower {
  const rand = mulberry32(IMAGE_SEED);
  const b = towerBuilder(rand, "uint8");
  const { node, op, constant, floats } = b;
  const grid = s.image / s.patch;
  const tokens = grid * grid + 1;
  const fanIn = 3 * s.patch * s.patch;

  node("DynamicQuantizeLinear", ["pixel_values"], ["pixels_q", "pixels_scale", "pixels_zero"]);
  const convW = b.quantized("patch_w", [s.width, 3, s.patch, s.patch]);
  const convZero = b.zeroPoint("patch_w_zero", []);
  constant(floatTensor("patch_w_scale", [], [0.5 / Math.sqrt(fanIn) / Q_STD]));
  op("ConvInteger", ["pixels_q", convW, "pixels_zero", convZero], "patch_int", { kernel_shape: [s.patch, s.patch], strides: [s.patch, s.patch] });
  op("Cast", ["patch_int"], "patch_float", { to: DataType.FLOAT });
  op("Mul", ["pixels_scale", "patch_w_scale"], "patch_scale");
  op("Mul", ["patch_float", "patch_scale"], "patch_grid");
  op("Reshape", ["patch_grid", constant(int64Tensor("patches_shape", [3], [0, s.width, grid * grid]))], "patch_cols");
  op("Transpose", ["patch_cols"], "patch_tokens", { perm: [0, 2, 1] });
  op("Shape", ["pixel_values"], "batch_dim", { end: 1 });
  op("Concat", ["batch_dim", constant(int64Tensor("class_tail", [2], [1, s.width]))], "class_shape", { axis: 0 });
  op("Expand", [floats("class_emb", [1, 1, s.width], 0.5), "class_shape"], "class_tokens");
  op("Concat", ["class_tokens", "patch_tokens"], "tokens", { axis: 1 });
  op("Add", ["tokens", floats("pos_emb", [1, tokens, s.width], 0.5)], "embedded");
  const x = b.transformer(b.layerNorm("embedded", "ln_pre", s.width), s.layers, s.width, s.heads);
  op("Gather", [x, "idx0"], "class_out", { axis: 1 });
  b.qMatMul(b.layerNorm("class_out", "ln_post", s.width), "proj", s.width, s.dims, { bias: false, out: "image_embeds" });

  return b.finish(
    {
      name: "clip_q8_cost_image",
      inputs: [{ name: "pixel_values", elemType: DataType.FLOAT, shape: ["batch", 3, s.image, s.image] }],
      outputs: [{ name: "image_embeds", elemType: DataType.FLOAT, shape: ["batch", s.dims] }],
    },
    `${name} image tower: ${Q8_COST_SHAPES[name]?.of ?? "custom"} int8 (quantize_dynamic form) shapes and parameters, random weights; benchmarks only`,
  );
}

/** input_ids [batch,sequence] -> text_embeds [batch,dims]: causal blocks over the sequence, pooled at the end token. */
export function buildQ8Text(s: TextTowerSizes = VIT_B32_TEXT, name = NAME): BuiltTower {
  const rand = mulberry32(TEXT_SEED);
  const b = towerBuilder(rand, "int8");
  const { op, constant, floats } = b;
  const causal = new Float32Array(s.context * s.context);
  for (let i = 0; i < s.context; i++) for (let j = i + 1; j < s.context; j++) causal[i * s.context + j] = -1e4;

  // quantize_dynamic quantizes a Gather's table with the activation type (uint8), one scale for the table.
  const table = b.quantized("token_table", [s.vocab, s.width], "uint8");
  op("Gather", [table, "input_ids"], "tokens_q", { axis: 0 });
  const tableScale = constant(floatTensor("token_table_scale", [], [0.5 / Q_STD]));
  op("DequantizeLinear", ["tokens_q", tableScale, b.zeroPoint("token_table_zero", [], "uint8")], "tokens");
  // The sequence axis is dynamic: position table and causal mask are cut to the input's length.
  op("Shape", ["input_ids"], "seq_len", { start: 1, end: 2 });
  constant(int64Tensor("zero1", [1], [0]));
  op("Slice", [floats("pos_emb", [s.context, s.width], 0.5), "zero1", "seq_len", "zero1"], "positions");
  op("Add", ["tokens", "positions"], "embedded");
  op("Concat", ["seq_len", "seq_len"], "mask_ends", { axis: 0 });
  constant(int64Tensor("zero2", [2], [0, 0]));
  constant(int64Tensor("axes01", [2], [0, 1]));
  op("Slice", [constant(floatTensor("causal_mask", [s.context, s.context], causal)), "zero2", "mask_ends", "axes01"], "mask");
  const x = b.transformer("embedded", s.layers, s.width, s.heads, "mask");
  b.layerNorm(x, "ln_final", s.width);
  // CLIP pools at the end-of-text token, the highest id in each row (HF: input_ids.to(int).argmax(-1)).
  op("Cast", ["input_ids"], "ids_int32", { to: DataType.INT32 });
  op("ArgMax", ["ids_int32"], "eot", { axis: 1, keepdims: 1 });
  op("GatherND", ["ln_final", "eot"], "pooled", { batch_dims: 1 });
  b.qMatMul("pooled", "proj", s.width, s.dims, { bias: false, out: "text_embeds" });

  return b.finish(
    {
      name: "clip_q8_cost_text",
      inputs: [{ name: "input_ids", elemType: DataType.INT64, shape: ["batch", "sequence"] }],
      outputs: [{ name: "text_embeds", elemType: DataType.FLOAT, shape: ["batch", s.dims] }],
    },
    `${name} text tower: ${Q8_COST_SHAPES[name]?.of ?? "custom"} int8 (quantize_dynamic form) shapes and parameters, random weights; benchmarks only`,
  );
}

function manifest(name: string, shape: Q8CostShape): object {
  const q8 = JSON.parse(readFileSync(join(import.meta.dir, "..", "clip-vit-b32-q8.json"), "utf8"));
  return {
    name,
    description: `Benchmark stand-in: ${shape.of}'s int8 towers with random weights: same shapes, parameter counts, int8 ops`,
    dims: shape.image.dims,
    license: "MIT (generated by imgd)",
    source: "models/test/generate-q8-cost.ts",
    generate: `bun models/test/generate-q8-cost.ts --shape ${name}`,
    image: { file: "image.onnx", input: "pixel_values", output: "image_embeds" },
    text: { file: "text.onnx", input: "input_ids", output: "text_embeds" },
    preprocess: { ...q8.preprocess, size: shape.image.image },
    tokenizer: { ...q8.tokenizer, padding: shape.padding ?? q8.tokenizer.padding },
  };
}

/** Writes `<modelsDir>/<name>.json` and `<modelsDir>/<name>/{image,text}.onnx`; identical files are left alone. */
export function generateQ8Cost(modelsDir: string, name = NAME): { path: string; written: boolean; params?: number }[] {
  const shape = Q8_COST_SHAPES[name];
  if (!shape) throw new Error(`no int8 stand-in named ${name}; there are ${Object.keys(Q8_COST_SHAPES).join(", ")}`);
  const dir = join(modelsDir, name);
  mkdirSync(dir, { recursive: true });
  const json = new TextEncoder().encode(`${JSON.stringify(manifest(name, shape), null, 2)}\n`);
  const out: { path: string; written: boolean; params?: number }[] = [{ path: join(modelsDir, `${name}.json`), written: writeIfChanged(join(modelsDir, `${name}.json`), json) }];
  // One tower at a time: each is ~100 MB of bytes while it is built.
  for (const [file, build] of [["image.onnx", () => buildQ8Image(shape.image, name)], ["text.onnx", () => buildQ8Text(shape.text, name)]] as const) {
    const tower = build();
    const path = join(dir, file);
    out.push({ path, written: writeIfChanged(path, tower.bytes), params: tower.params });
  }
  return out;
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const at = args.indexOf("--shape");
  const name = at >= 0 ? args.splice(at, 2)[1]! : NAME;
  const modelsDir = resolve(args[0] ?? join(import.meta.dir, "..", "..", ".bench", "models"));
  const t0 = performance.now();
  for (const r of generateQ8Cost(modelsDir, name)) {
    const size = `${(statSync(r.path).size / 1e6).toFixed(1)} MB`;
    const params = r.params === undefined ? "" : `, ${r.params.toLocaleString("en")} parameters`;
    console.log(`${r.written ? "wrote" : "unchanged"} ${r.path} (${size}${params})`);
  }
  console.log(`in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
}
