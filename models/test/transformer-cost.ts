// What the cost stand-ins for CLIP's towers share (vit-cost, text-cost): random weights, a small graph builder,
// and the pre-LN transformer block stack. Each block reuses one set of weights (mlp_fc, qkv_w, out_w, biases,
// ln_g/ln_b, attn_scale, gelu_k, qkv_shape, merge_shape, idx0..2, and mlp_proj = mlp_fc transposed), which keeps
// the files small while the arithmetic is the real one.
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

/** `layers` pre-LN blocks over `x`; with `mask` (an additive [tokens, tokens] initializer) attention is masked. */
export function transformerBlocks(
  { op, layerNorm }: ReturnType<typeof graphBuilder>,
  input: string,
  layers: number,
  mask?: string,
): string {
  let x = input;
  for (let l = 0; l < layers; l++) {
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
    const scaled = op("Mul", [p("scores_raw"), "attn_scale"], p(mask ? "scores_scaled" : "scores"));
    if (mask) op("Add", [scaled, mask], p("scores"));
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
    // QuickGELU, CLIP's own activation: x * sigmoid(1.702 x). Gelu proper only arrives in opset 20.
    op("Mul", [p("fc"), "gelu_k"], p("gelu_in"));
    op("Sigmoid", [p("gelu_in")], p("gelu_gate"));
    op("Mul", [p("fc"), p("gelu_gate")], p("gelu"));
    op("MatMul", [p("gelu"), "mlp_proj"], p("fc2_mm"));
    op("Add", [p("fc2_mm"), "fc2_b"], p("mlp"));
    x = op("Add", [p("x_attn"), p("mlp")], p("out"));
  }
  return x;
}
