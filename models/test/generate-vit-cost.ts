// Writes "vit-cost": a model with the CLIP ViT-B/32 image tower's signature and its compute (~4.4 GMACs per image),
// but random weights. Benchmarks need inference to cost what the real model costs on this machine, and the real
// weights cannot be downloaded here. Its text tower is test-clip's, so the CLI can open it like any model.
//
//   bun models/test/generate-vit-cost.ts [modelsDir]     (default .bench/models/: vit-cost.json + vit-cost/)
//
// Same shapes as the real tower: 32x32/32 patch Conv to 768, class token + 49 patches, 12 pre-LN blocks (QKV
// 768->2304, 12 heads x 64, out 768->768, MLP 768->3072->768 with QuickGELU), LN on the class token, 768->512.
// All 12 blocks share one set of weights and the MLP's second matrix and the patch Conv reuse the first MLP matrix
// (ORT folds the Transpose/Reshape at load), which keeps the file near 20 MB; the arithmetic is unchanged.
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { mkdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { generateTestClip, writeIfChanged } from "./generate.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph } from "./onnx-writer.ts";
import { graphBuilder, transformerBlocks, uniformWeights } from "./transformer-cost.ts";

export const NAME = "vit-cost";
const IMAGE = 224;
const PATCH = 32;
const GRID = IMAGE / PATCH;
const TOKENS = GRID * GRID + 1;
const WIDTH = 768;
const HEADS = 12;
const HEAD_DIM = WIDTH / HEADS;
const MLP = 4 * WIDTH;
const LAYERS = 12;
const DIMS = 512;
const SEED = 0xb32;

/** Multiply-accumulates per image, for reports: patch Conv, 12 blocks, projection. */
export const MACS_PER_IMAGE =
  GRID * GRID * WIDTH * 3 * PATCH * PATCH +
  LAYERS *
    (TOKENS * WIDTH * 3 * WIDTH + 2 * HEADS * TOKENS * TOKENS * HEAD_DIM + TOKENS * WIDTH * WIDTH + 2 * TOKENS * WIDTH * MLP) +
  WIDTH * DIMS;

const prng = mulberry32;

function imageGraph(): Graph {
  const rand = prng(SEED);
  // 1/sqrt(fan_in) keeps each projection's output near unit scale; pre-LN blocks keep the residual stream bounded.
  const w = (name: string, dims: number[], fanIn: number) =>
    floatTensor(name, dims, uniformWeights(rand, dims.reduce((a, b) => a * b, 1), 0.5 / Math.sqrt(fanIn)));
  const ones = (n: number) => new Float32Array(n).fill(1);
  const zeros = (n: number) => new Float32Array(n);

  const initializers = [
    w("mlp_fc", [WIDTH, MLP], WIDTH),
    w("qkv_w", [WIDTH, 3 * WIDTH], WIDTH),
    w("out_w", [WIDTH, WIDTH], WIDTH),
    w("proj_w", [WIDTH, DIMS], WIDTH),
    w("class_emb", [1, 1, WIDTH], 1),
    w("pos_emb", [1, TOKENS, WIDTH], 1),
    floatTensor("qkv_b", [3 * WIDTH], zeros(3 * WIDTH)),
    floatTensor("out_b", [WIDTH], zeros(WIDTH)),
    floatTensor("fc_b", [MLP], zeros(MLP)),
    floatTensor("fc2_b", [WIDTH], zeros(WIDTH)),
    floatTensor("ln_g", [WIDTH], ones(WIDTH)),
    floatTensor("ln_b", [WIDTH], zeros(WIDTH)),
    floatTensor("attn_scale", [], [1 / Math.sqrt(HEAD_DIM)]),
    floatTensor("gelu_k", [], [1.702]),
    int64Tensor("conv_shape", [4], [WIDTH, 3, PATCH, PATCH]),
    int64Tensor("patches_shape", [3], [0, WIDTH, GRID * GRID]),
    int64Tensor("class_tail", [2], [1, WIDTH]),
    int64Tensor("qkv_shape", [5], [0, TOKENS, 3, HEADS, HEAD_DIM]),
    int64Tensor("merge_shape", [3], [0, TOKENS, WIDTH]),
    int64Tensor("idx0", [], [0]),
    int64Tensor("idx1", [], [1]),
    int64Tensor("idx2", [], [2]),
  ];

  const builder = graphBuilder();
  const { nodes, op, layerNorm } = builder;

  op("Reshape", ["mlp_fc", "conv_shape"], "conv_w");
  op("Transpose", ["mlp_fc"], "mlp_proj", { perm: [1, 0] });
  op("Conv", ["pixel_values", "conv_w"], "patch_grid", { kernel_shape: [PATCH, PATCH], strides: [PATCH, PATCH] });
  op("Reshape", ["patch_grid", "patches_shape"], "patch_cols");
  op("Transpose", ["patch_cols"], "patch_tokens", { perm: [0, 2, 1] });
  op("Shape", ["pixel_values"], "batch_dim", { end: 1 });
  op("Concat", ["batch_dim", "class_tail"], "class_shape", { axis: 0 });
  op("Expand", ["class_emb", "class_shape"], "class_tokens");
  op("Concat", ["class_tokens", "patch_tokens"], "tokens", { axis: 1 });
  op("Add", ["tokens", "pos_emb"], "embedded");
  let x = layerNorm("embedded", "x0");

  x = transformerBlocks(builder, x, LAYERS);

  op("Gather", [x, "idx0"], "class_out", { axis: 1 });
  layerNorm("class_out", "pooled");
  op("MatMul", ["pooled", "proj_w"], "image_embeds");

  return {
    name: "vit_cost_image",
    inputs: [{ name: "pixel_values", elemType: DataType.FLOAT, shape: ["batch", 3, IMAGE, IMAGE] }],
    outputs: [{ name: "image_embeds", elemType: DataType.FLOAT, shape: ["batch", DIMS] }],
    initializers,
    nodes,
  };
}

export function buildVitCost(): Uint8Array {
  return encodeModel(imageGraph(), {
    irVersion: 8,
    opset: 17,
    producerName: "imgd models/test/generate-vit-cost.ts",
    docString: "vit-cost: CLIP ViT-B/32 image tower shapes and compute, random shared weights; for benchmarks only",
  });
}

function manifest(): object {
  const clip = JSON.parse(readFileSync(join(import.meta.dir, "..", "clip-vit-b32.json"), "utf8"));
  const testClip = JSON.parse(readFileSync(join(import.meta.dir, "..", "test-clip.json"), "utf8"));
  // The text file is a copy of test-clip's, so its hash holds; the image hash is left out as the manifests do for
  // files nobody publishes.
  return {
    name: NAME,
    description: "Benchmark stand-in: CLIP ViT-B/32 image-tower compute with random weights; test-clip's text tower",
    dims: DIMS,
    license: "MIT (generated by imgd)",
    source: "models/test/generate-vit-cost.ts",
    generate: "bun models/test/generate-vit-cost.ts",
    image: { file: "image.onnx", input: "pixel_values", output: "image_embeds" },
    text: testClip.text,
    preprocess: clip.preprocess,
    tokenizer: clip.tokenizer,
  };
}


/** Writes `<modelsDir>/vit-cost.json` and `<modelsDir>/vit-cost/{image,text}.onnx`; identical files are left alone. */
export function generateVitCost(modelsDir: string): { path: string; written: boolean }[] {
  const dir = join(modelsDir, NAME);
  mkdirSync(dir, { recursive: true });
  // test-clip's text tower is generated, not committed, so make sure it exists before copying it.
  const testClipDir = join(import.meta.dir, "..", "test-clip");
  generateTestClip(testClipDir);
  const text = readFileSync(join(testClipDir, "text.onnx"));
  const json = new TextEncoder().encode(`${JSON.stringify(manifest(), null, 2)}\n`);
  const files: [string, Uint8Array][] = [
    [join(modelsDir, `${NAME}.json`), json],
    [join(dir, "text.onnx"), text],
    [join(dir, "image.onnx"), buildVitCost()],
  ];
  return files.map(([path, bytes]) => ({ path, written: writeIfChanged(path, bytes) }));
}

if (import.meta.main) {
  const modelsDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "..", ".bench", "models"));
  for (const r of generateVitCost(modelsDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  console.log(`${(MACS_PER_IMAGE / 1e9).toFixed(2)} GMACs per image`);
}
