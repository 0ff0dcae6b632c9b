// What the cost stand-ins for CLIP's towers share (vit-cost, text-cost): random weights, a small graph builder,
// and the pre-LN transformer block stack. By default every block reuses one set of weights (mlp_fc, qkv_w, out_w,
// biases, ln_g/ln_b, attn_scale, gelu_k, qkv_shape, merge_shape, idx0..2, and mlp_proj = mlp_fc transposed), which
// keeps the file small while the arithmetic is the real one. `weightName` gives blocks their own weights where the
// memory traffic matters too (text-cost: a short query streams every layer's matrices from memory once per run).
import type { Node } from "./onnx-writer.ts";

/** Uniform with standard deviation `std`: cheap for millions of values and enough to keep activations finite. */
export function uniformWeights(rand: () => number, count: number, std: number): Float32Array {
  const half = std * Math.sqrt(3);
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) out[i] = (rand() * 2 - 1) * half;
  return out;
}

export function graphBuilder() {
  const nodes: Node[] = [];
  const op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) => {
    nodes.push({ opType, inputs, outputs: [output], attributes });
    return output;
  };
  const layerNorm = (x: string, out: string) =>
    op("LayerNormalization", [x, "ln_g", "ln_b"], out, { axis: -1, epsilon: { float: 1e-5 } });
  return { nodes, op, layerNorm };
}

type Op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) => string;

/**
 * Multi-head self-attention from a block's QKV projection `qkv` [n, tokens, 3 width] to the context [n, tokens, width]
 * that its output projection takes; `p` names the block's values. Reads the initializers qkv_shape, merge_shape,
 * idx0..2 and attn_scale; `mask` is added to the scores.
 */
export function attentionHeads(op: Op, p: (name: string) => string, qkv: string, mask?: string): string {
  op("Reshape", [qkv, "qkv_shape"], p("qkv_split"));
  op("Transpose", [p("qkv_split")], p("qkv_heads"), { perm: [2, 0, 3, 1, 4] });
  for (const [i, t] of ["q", "k", "v"].entries()) op("Gather", [p("qkv_heads"), `idx${i}`], p(t), { axis: 0 });
  op("Transpose", [p("k")], p("kt"), { perm: [0, 1, 3, 2] });
  op("MatMul", [p("q"), p("kt")], p("scores_raw"));
  const scaled = op("Mul", [p("scores_raw"), "attn_scale"], p(mask ? "scores_scaled" : "scores"));
  if (mask) op("Add", [scaled, mask], p("scores"));
  op("Softmax", [p("scores")], p("probs"), { axis: -1 });
  op("MatMul", [p("probs"), p("v")], p("ctx_heads"));
  op("Transpose", [p("ctx_heads")], p("ctx_tokens"), { perm: [0, 2, 1, 3] });
  return op("Reshape", [p("ctx_tokens"), "merge_shape"], p("ctx"));
}

export interface BlockOptions {
  /** An additive [tokens, tokens] tensor (initializer or node output) added to the attention scores. */
  mask?: string;
  /** The initializer block `layer` reads for a shared weight name; the default shares every weight. */
  weightName?: (name: string, layer: number) => string;
}

/** `layers` pre-LN blocks over `input`. */
export function transformerBlocks(
  { op, layerNorm }: ReturnType<typeof graphBuilder>,
  input: string,
  layers: number,
  { mask, weightName = (name) => name }: BlockOptions = {},
): string {
  let x = input;
  for (let l = 0; l < layers; l++) {
    const p = (s: string) => `l${l}_${s}`;
    const w = (name: string) => weightName(name, l);
    const h = layerNorm(x, p("ln1"));
    op("MatMul", [h, w("qkv_w")], p("qkv_mm"));
    op("Add", [p("qkv_mm"), w("qkv_b")], p("qkv"));
    const ctx = attentionHeads(op, p, p("qkv"), mask);
    op("MatMul", [ctx, w("out_w")], p("attn_mm"));
    op("Add", [p("attn_mm"), w("out_b")], p("attn"));
    op("Add", [x, p("attn")], p("x_attn"));
    const h2 = layerNorm(p("x_attn"), p("ln2"));
    op("MatMul", [h2, w("mlp_fc")], p("fc_mm"));
    op("Add", [p("fc_mm"), w("fc_b")], p("fc"));
    // QuickGELU, CLIP's own activation: x * sigmoid(1.702 x). Gelu proper only arrives in opset 20.
    op("Mul", [p("fc"), "gelu_k"], p("gelu_in"));
    op("Sigmoid", [p("gelu_in")], p("gelu_gate"));
    op("Mul", [p("fc"), p("gelu_gate")], p("gelu"));
    op("MatMul", [p("gelu"), w("mlp_proj")], p("fc2_mm"));
    op("Add", [p("fc2_mm"), w("fc2_b")], p("mlp"));
    x = op("Add", [p("x_attn"), p("mlp")], p("out"));
  }
  return x;
}
