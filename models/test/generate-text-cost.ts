// Writes "text-cost": a model whose text tower has the CLIP ViT-B/32 text transformer's signature and compute
// (12 causal blocks of width 512 over 77 tokens, ~3 GMACs per text) with random weights. test-clip's text tower
// costs ~0.1 ms, so a server bench over it cannot show what micro-batching does for real queries; this one costs
// what the real text tower costs. Its image tower is test-clip's (the server opens it only for image queries).
//
//   bun models/test/generate-text-cost.ts [modelsDir]     (default .bench/models/: text-cost.json + text-cost/)
//
// Token ids are folded into a 1021-row embedding table (the real one has 49408 rows: a large file, the same
// arithmetic). All blocks share one set of weights and the MLP's second matrix is the first one transposed, as in
// vit-cost, which keeps the file near 10 MB.
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { generateTestClip, writeIfChanged } from "./generate.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph, type Node } from "./onnx-writer.ts";

export const NAME = "text-cost";
const TOKENS = 77;
const WIDTH = 512;
const HEADS = 8;
const HEAD_DIM = WIDTH / HEADS;
const MLP = 4 * WIDTH;
const LAYERS = 12;
const DIMS = 512;
const TABLE_ROWS = 1021;
const SEED = 0x7e87;

/** Multiply-accumulates per text, for reports: 12 blocks and the projection. */
export const MACS_PER_TEXT =
  LAYERS * (TOKENS * WIDTH * 3 * WIDTH + 2 * HEADS * TOKENS * TOKENS * HEAD_DIM + TOKENS * WIDTH * WIDTH + 2 * TOKENS * WIDTH * MLP) +
  WIDTH * DIMS;

function weights(rand: () => number, count: number, std: number): Float32Array {
  const half = std * Math.sqrt(3);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rand() * 2 - 1) * half;
  return out;
}

function textGraph(): Graph {
  const rand = mulberry32(SEED);
  const w = (name: string, dims: number[], fanIn: number) =>
    floatTensor(name, dims, weights(rand, dims.reduce((a, b) => a * b, 1), 0.5 / Math.sqrt(fanIn)));
  // CLIP's text transformer is causal: token i attends to tokens 0..i.
  const causal = new Float32Array(TOKENS * TOKENS);
  for (let i = 0; i < TOKENS; i++) for (let j = i + 1; j < TOKENS; j++) causal[i * TOKENS + j] = -1e4;

  const initializers = [
    w("token_emb", [TABLE_ROWS, WIDTH], 1),
    w("pos_emb", [1, TOKENS, WIDTH], 1),
    w("mlp_fc", [WIDTH, MLP], WIDTH),
    w("qkv_w", [WIDTH, 3 * WIDTH], WIDTH),
    w("out_w", [WIDTH, WIDTH], WIDTH),
    w("proj_w", [WIDTH, DIMS], WIDTH),
    floatTensor("causal_mask", [TOKENS, TOKENS], causal),
    floatTensor("qkv_b", [3 * WIDTH], new Float32Array(3 * WIDTH)),
    floatTensor("out_b", [WIDTH], new Float32Array(WIDTH)),
    floatTensor("fc_b", [MLP], new Float32Array(MLP)),
    floatTensor("fc2_b", [WIDTH], new Float32Array(WIDTH)),
    floatTensor("ln_g", [WIDTH], new Float32Array(WIDTH).fill(1)),
    floatTensor("ln_b", [WIDTH], new Float32Array(WIDTH)),
    floatTensor("attn_scale", [], [1 / Math.sqrt(HEAD_DIM)]),
    floatTensor("gelu_k", [], [1.702]),
    int64Tensor("table_rows", [], [TABLE_ROWS]),
    int64Tensor("qkv_shape", [5], [0, TOKENS, 3, HEADS, HEAD_DIM]),
    int64Tensor("merge_shape", [3], [0, TOKENS, WIDTH]),
    int64Tensor("idx0", [], [0]),
    int64Tensor("idx1", [], [1]),
    int64Tensor("idx2", [], [2]),
  ];

  const nodes: Node[] = [];
  const op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) => {
    nodes.push({ opType, inputs, outputs: [output], attributes });
    return output;
  };
  const layerNorm = (x: string, out: string) =>
    op("LayerNormalization", [x, "ln_g", "ln_b"], out, { axis: -1, epsilon: { float: 1e-5 } });

  op("Transpose", ["mlp_fc"], "mlp_proj", { perm: [1, 0] });
  op("Mod", ["input_ids", "table_rows"], "rows");
  op("Gather", ["token_emb", "rows"], "tokens", { axis: 0 });
  let x = op("Add", ["tokens", "pos_emb"], "embedded");

  for (let l = 0; l < LAYERS; l++) {
    const p = (s: string) => `l${l}_${s}`;
    const h = layerNorm(x, p("ln1"));
    op("MatMul", [h, "qkv_w"], p("qkv_mm"));
    op("Add", [p("qkv_mm"), "qkv_b"], p("qkv"));
    op("Reshape", [p("qkv"), "qkv_shape"], p("qkv_split"));
    op("Transpose", [p("qkv_split")], p("qkv_heads"), { perm: [2, 0, 3, 1, 4] });
    op("Gather", [p("qkv_heads"), "idx0"], p("q"), { axis: 0 });
    op("Gather", [p("qkv_heads"), "idx1"], p("k"), { axis: 0 });
    op("Gather", [p("qkv_heads"), "idx2"], p("v"), { axis: 0 });
    op("Transpose", [p("k")], p("kt"), { perm: [0, 1, 3, 2] });
    op("MatMul", [p("q"), p("kt")], p("scores_raw"));
    op("Mul", [p("scores_raw"), "attn_scale"], p("scores_scaled"));
    op("Add", [p("scores_scaled"), "causal_mask"], p("scores"));
    op("Softmax", [p("scores")], p("probs"), { axis: -1 });
    op("MatMul", [p("probs"), p("v")], p("ctx_heads"));
    op("Transpose", [p("ctx_heads")], p("ctx_tokens"), { perm: [0, 2, 1, 3] });
    op("Reshape", [p("ctx_tokens"), "merge_shape"], p("ctx"));
    op("MatMul", [p("ctx"), "out_w"], p("attn_mm"));
    op("Add", [p("attn_mm"), "out_b"], p("attn"));
    op("Add", [x, p("attn")], p("x_attn"));
    const h2 = layerNorm(p("x_attn"), p("ln2"));
    op("MatMul", [h2, "mlp_fc"], p("fc_mm"));
    op("Add", [p("fc_mm"), "fc_b"], p("fc"));
    op("Mul", [p("fc"), "gelu_k"], p("gelu_in"));
    op("Sigmoid", [p("gelu_in")], p("gelu_gate"));
    op("Mul", [p("fc"), p("gelu_gate")], p("gelu"));
    op("MatMul", [p("gelu"), "mlp_proj"], p("fc2_mm"));
    op("Add", [p("fc2_mm"), "fc2_b"], p("mlp"));
    x = op("Add", [p("x_attn"), p("mlp")], p("out"));
  }

  // The real tower pools at the end-of-text token; one Gather costs the same wherever it reads.
  op("Gather", [x, "idx0"], "first_token", { axis: 1 });
  layerNorm("first_token", "pooled");
  op("MatMul", ["pooled", "proj_w"], "text_embeds");

  return {
    name: "text_cost_text",
    inputs: [{ name: "input_ids", elemType: DataType.INT64, shape: ["batch", TOKENS] }],
    outputs: [{ name: "text_embeds", elemType: DataType.FLOAT, shape: ["batch", DIMS] }],
    initializers,
    nodes,
  };
}

export function buildTextCost(): Uint8Array {
  return encodeModel(textGraph(), {
    irVersion: 8,
    opset: 17,
    producerName: "imgd models/test/generate-text-cost.ts",
    docString: "text-cost: CLIP ViT-B/32 text tower shapes and compute, random shared weights; for benchmarks only",
  });
}

function manifest(): object {
  const testClip = JSON.parse(readFileSync(join(import.meta.dir, "..", "test-clip.json"), "utf8"));
  return {
    name: NAME,
    description: "Benchmark stand-in: CLIP ViT-B/32 text-tower compute with random weights; test-clip's image tower",
    dims: DIMS,
    license: "MIT (generated by imgd)",
    source: "models/test/generate-text-cost.ts",
    generate: "bun models/test/generate-text-cost.ts",
    image: testClip.image,
    text: { file: "text.onnx", input: "input_ids", output: "text_embeds" },
    preprocess: testClip.preprocess,
    tokenizer: testClip.tokenizer,
  };
}

/** Writes `<modelsDir>/text-cost.json` and `<modelsDir>/text-cost/{image,text}.onnx`; identical files are left alone. */
export function generateTextCost(modelsDir: string): { path: string; written: boolean }[] {
  const dir = join(modelsDir, NAME);
  mkdirSync(dir, { recursive: true });
  const testClipDir = join(import.meta.dir, "..", "test-clip");
  generateTestClip(testClipDir);
  const json = new TextEncoder().encode(`${JSON.stringify(manifest(), null, 2)}\n`);
  const files: [string, Uint8Array][] = [
    [join(modelsDir, `${NAME}.json`), json],
    [join(dir, "image.onnx"), readFileSync(join(testClipDir, "image.onnx"))],
    [join(dir, "text.onnx"), buildTextCost()],
  ];
  return files.map(([path, bytes]) => ({ path, written: writeIfChanged(path, bytes) }));
}

if (import.meta.main) {
  const modelsDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "..", ".bench", "models"));
  for (const r of generateTextCost(modelsDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  console.log(`${(MACS_PER_TEXT / 1e9).toFixed(2)} GMACs per text`);
}
