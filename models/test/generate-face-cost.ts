// Writes "scrfd-cost" and "arcface-cost": benchmark stand-ins with the signatures and roughly the compute of
// SCRFD-10GF (det_10g) at 640x640 and ArcFace IResNet-50 (w600k_r50) at 112x112, but random weights. The face
// bench needs the stage to cost what the real models cost on this machine; the real weights are not here.
//
//   bun models/test/generate-face-cost.ts [modelsDir]     (default .bench/models/: *.json manifests + folders)
//
// scrfd-cost: a plain ReLU conv backbone (stride 2 stem, 4 levels at strides 4, 8, 16, 32) and one 3x3 conv + 1x1
// score/bbox/kps convs per stride 8/16/32, reshaped like SCRFD's head to [anchors, 1|4|10]. SCRFD-10GF is quoted
// at 10 GFLOPs on VGA (640x480; mmcv counts multiply-adds), so ~13.3 GMACs at 640x640; this one is sized to that.
// arcface-cost: IResNet-50's layout (3x3 stem at 112, then 3/4/14/3 blocks of two 3x3 convs at 56/28/14/7 with 64..512
// channels), ending in global pooling + a 512x512 projection instead of IResNet's 25088x512 FC (same ~0.2% of the
// compute, 50 MB smaller). Convs of one shape share a weight tensor, which keeps the files small.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { writeIfChanged } from "./generate.ts";
import { convNet, type ConvNet } from "./conv-cost.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph } from "./onnx-writer.ts";

export const DETECTOR_NAME = "scrfd-cost";
export const EMBEDDER_NAME = "arcface-cost";
const SIZE = 640;
const SEED = 0x5c2fd;
/** Score logits start here, so random weights give the few candidates of a trained detector, not thousands. */
const SCORE_BIAS = -7;

interface Built {
  graph: Graph;
  macs: number;
}

/** A plain ReLU net with He-uniform weights, which keep activations at scale through the ReLU stack. */
function convBuilder(seed: number): ConvNet {
  return convNet({ seed, weightHalfRange: (fanIn) => Math.sqrt(6 / fanIn), activate: (g, y, output) => g.op("Relu", [y], undefined, output) });
}

function buildDetector(): Built {
  const g = convBuilder(SEED);
  let x = g.conv("input.1", SIZE, 3, 32, 3, 2);
  // Levels at strides 4, 8, 16, 32: a strided conv in, then `blocks` 3x3 convs.
  const levels = [
    { c: 64, blocks: 3 },
    { c: 128, blocks: 2 },
    { c: 256, blocks: 2 },
    { c: 512, blocks: 2 },
  ];
  let cin = 32;
  const features: { y: string; side: number; c: number; stride: number }[] = [];
  levels.forEach((level, i) => {
    x = g.conv(x.y, x.side, cin, level.c, 3, 2);
    for (let b = 0; b < level.blocks; b++) x = g.conv(x.y, x.side, level.c, level.c, 3);
    cin = level.c;
    if (i > 0) features.push({ y: x.y, side: x.side, c: level.c, stride: 4 * 2 ** i });
  });
  const outputs: Record<string, string> = {};
  for (const f of features) {
    const h = g.conv(f.y, f.side, f.c, f.c, 3);
    const anchors = f.side * f.side * 2;
    for (const [what, per] of [["score", 1], ["bbox", 4], ["kps", 10]] as const) {
      const head = g.conv(h.y, h.side, f.c, 2 * per, 1, 1, { act: false, bias: what === "score" ? SCORE_BIAS : 0 });
      // SCRFD's head: [1, 2 * per, h, w] -> [h, w, 2 * per] -> [h * w * 2, per]; scores through a sigmoid.
      const t = g.op("Transpose", [head.y], { perm: [0, 2, 3, 1] });
      const shape = g.constant(int64Tensor(g.fresh("shape"), [2], [anchors, per]));
      const name = `${what}_${f.stride}`;
      if (what === "score") g.op("Sigmoid", [g.op("Reshape", [t, shape])], undefined, name);
      else g.op("Reshape", [t, shape], undefined, name);
      outputs[name] = name;
    }
  }
  const strides = features.map((f) => f.stride);
  const anchorsAt = (s: number) => (SIZE / s) ** 2 * 2;
  return {
    macs: g.macs(),
    graph: {
      name: "scrfd_cost",
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{ name: "input.1", elemType: DataType.FLOAT, shape: [1, 3, SIZE, SIZE] }],
      outputs: (["score", "bbox", "kps"] as const).flatMap((what) =>
        strides.map((s) => ({ name: `${what}_${s}`, elemType: DataType.FLOAT, shape: [anchorsAt(s), { score: 1, bbox: 4, kps: 10 }[what]] })),
      ),
    },
  };
}

function buildEmbedder(): Built {
  const g = convBuilder(SEED + 1);
  let x = g.conv("input.1", 112, 3, 64, 3);
  let cin = 64;
  // IResNet-50: per stage, the first block's first conv halves the side; every block is two 3x3 convs + identity.
  for (const [c, blocks] of [[64, 3], [128, 4], [256, 14], [512, 3]] as const) {
    for (let b = 0; b < blocks; b++) {
      const a = g.conv(x.y, x.side, cin, c, 3, b === 0 ? 2 : 1);
      const y = g.conv(a.y, a.side, c, c, 3, 1, { act: false });
      x = b === 0 ? { y: g.op("Relu", [y.y]), side: y.side } : { y: g.op("Relu", [g.op("Add", [y.y, x.y])]), side: y.side };
      cin = c;
    }
  }
  const pooled = g.op("GlobalAveragePool", [x.y]);
  const flat = g.op("Reshape", [pooled, g.constant(int64Tensor("flat_shape", [2], [-1, 512]))]);
  const rand = mulberry32(SEED + 2);
  const fc = g.constant(floatTensor("fc", [512, 512], Float32Array.from({ length: 512 * 512 }, () => rand() * 2 - 1)));
  g.op("MatMul", [flat, fc], undefined, "embedding");
  return {
    macs: g.macs() + 512 * 512,
    graph: {
      name: "arcface_cost",
      nodes: g.nodes,
      initializers: g.initializers,
      inputs: [{ name: "input.1", elemType: DataType.FLOAT, shape: ["batch", 3, 112, 112] }],
      outputs: [{ name: "embedding", elemType: DataType.FLOAT, shape: ["batch", 512] }],
    },
  };
}

let detector: Built | undefined;
let embedder: Built | undefined;
const builtDetector = () => (detector ??= buildDetector());
const builtEmbedder = () => (embedder ??= buildEmbedder());

/** Convolution multiply-accumulates: per image for the detector, per face for the embedder. */
export function faceCostMacs(): { detector: number; embedder: number } {
  return { detector: builtDetector().macs, embedder: builtEmbedder().macs };
}

function manifests(): [string, object][] {
  const common = { license: "MIT (generated by imgd)", source: "models/test/generate-face-cost.ts", generate: "bun models/test/generate-face-cost.ts", files: { model: { file: "model.onnx" } } };
  return [
    [DETECTOR_NAME, { name: DETECTOR_NAME, task: "face-detect", description: "Benchmark stand-in: SCRFD-10GF's signature and compute at 640x640 with random weights (detections are noise)", ...common, params: { inputSize: [SIZE, SIZE], input: "input.1" } }],
    [EMBEDDER_NAME, { name: EMBEDDER_NAME, task: "face-embed", description: "Benchmark stand-in: ArcFace IResNet-50's signature and compute with random weights", ...common, params: { inputSize: 112, input: "input.1", output: "embedding", dims: 512 } }],
  ];
}

export function faceCostManifests(): object[] {
  return manifests().map(([, m]) => m);
}

/** Writes `<modelsDir>/{scrfd,arcface}-cost.json` and `<modelsDir>/{scrfd,arcface}-cost/model.onnx`. */
export function generateFaceCost(modelsDir: string): { path: string; written: boolean }[] {
  const opts = { irVersion: 8, opset: 17, producerName: "imgd models/test/generate-face-cost.ts", docString: "face cost stand-in for benchmarks only" };
  const models: [string, () => Graph][] = [
    [DETECTOR_NAME, () => builtDetector().graph],
    [EMBEDDER_NAME, () => builtEmbedder().graph],
  ];
  const written: { path: string; written: boolean }[] = [];
  for (const [name, manifest] of manifests()) {
    const dir = join(modelsDir, name);
    mkdirSync(dir, { recursive: true });
    const json = join(modelsDir, `${name}.json`);
    written.push({ path: json, written: writeIfChanged(json, new TextEncoder().encode(`${JSON.stringify(manifest, null, 2)}\n`)) });
    const graph = models.find(([n]) => n === name)![1]();
    const onnx = join(dir, "model.onnx");
    written.push({ path: onnx, written: writeIfChanged(onnx, encodeModel(graph, opts)) });
  }
  return written;
}

if (import.meta.main) {
  const modelsDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "..", ".bench", "models"));
  for (const r of generateFaceCost(modelsDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  const macs = faceCostMacs();
  console.log(`${(macs.detector / 1e9).toFixed(2)} GMACs per image (detector), ${(macs.embedder / 1e9).toFixed(2)} GMACs per face (embedder)`);
}
