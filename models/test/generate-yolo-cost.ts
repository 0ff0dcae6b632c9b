// Writes "yolo-cost": a detector with YOLOv8n's layer shapes and compute (~4.4 GMACs at 640, "8.7 GFLOPs") and
// its exact output head (DFL box decoding, sigmoid class scores -> output0 1x84x8400), but random weights.
// Benchmarks need the detector to cost what YOLOv8n costs on this machine; the real weights are not here.
//
//   bun models/test/generate-yolo-cost.ts [modelsDir]     (default .bench/models/: yolo-cost.json + yolo-cost/)
//
// Layers follow ultralytics' yolov8.yaml at scale n (depth 0.33, width 0.25): Conv = Conv2d + SiLU (BatchNorm is
// folded into the conv at export, so it costs nothing), C2f, SPPF, the PAN neck with nearest 2x upsampling, and
// the Detect head (per level: box branch 3x3 64, 3x3 64, 1x1 64; class branch 3x3 80, 3x3 80, 1x1 80). Convs of
// the same shape share one weight tensor, which keeps the file small; the arithmetic is unchanged.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeIfChanged } from "./generate.ts";
import { convNet } from "./conv-cost.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph } from "./onnx-writer.ts";

export const NAME = "yolo-cost";
const SIZE = 640;
const CLASSES = 80;
const REG_MAX = 16;
const STRIDES = [8, 16, 32];
const ANCHORS = STRIDES.reduce((n, s) => n + (SIZE / s) ** 2, 0);
const SEED = 0x8a;
/** Class logits start here, so random weights give the sparse scores of a trained detector, not 8400 candidates. */
const CLASS_BIAS = -7;

interface Built {
  graph: Graph;
  macs: number;
}

function build(): Built {
  // Conv = Conv2d + SiLU; weights scaled so activations neither vanish nor blow up through the stack.
  const net = convNet({
    seed: SEED,
    weightHalfRange: (fanIn) => Math.sqrt(3) * (1.6 / Math.sqrt(fanIn)),
    activate: (g, y) => g.op("Mul", [y, g.op("Sigmoid", [y])]),
  });
  const { nodes, initializers, op, constant, fresh } = net;
  const conv = net.conv;

  const split = (x: string, sizes: number[]) => {
    const outs = sizes.map(() => fresh("split"));
    op("Split", [x, constant(int64Tensor(fresh("sizes"), [sizes.length], sizes))], { axis: 1 }, outs);
    return outs;
  };

  /** C2f: 1x1 to 2c, split, n bottlenecks on the second half, concat everything, 1x1 to cout. */
  const c2f = (x: string, side: number, cin: number, cout: number, n: number, shortcut: boolean) => {
    const c = cout / 2;
    const [a, b0] = split(conv(x, side, cin, 2 * c, 1).y, [c, c]) as [string, string];
    const parts = [a, b0];
    let b = b0;
    for (let i = 0; i < n; i++) {
      const inner = conv(conv(b, side, c, c, 3).y, side, c, c, 3).y;
      b = shortcut ? op("Add", [b, inner]) : inner;
      parts.push(b);
    }
    return conv(op("Concat", parts, { axis: 1 }), side, (2 + n) * c, cout, 1).y;
  };

  const sppf = (x: string, side: number, cin: number, cout: number) => {
    const c = cin / 2;
    const y0 = conv(x, side, cin, c, 1).y;
    const pool = (v: string) => op("MaxPool", [v], { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2] });
    const y1 = pool(y0);
    const y2 = pool(y1);
    const y3 = pool(y2);
    return conv(op("Concat", [y0, y1, y2, y3], { axis: 1 }), side, 4 * c, cout, 1).y;
  };

  const scales = constant(floatTensor("up_scales", [4], [1, 1, 2, 2]));
  const roi = constant(floatTensor("up_roi", [0], []));
  const upsample = (x: string) => op("Resize", [x, roi, scales], { mode: "nearest" });

  // Backbone.
  let x = conv("images", SIZE, 3, 16, 3, 2).y; // 320
  x = conv(x, 320, 16, 32, 3, 2).y; // 160
  x = c2f(x, 160, 32, 32, 1, true);
  x = conv(x, 160, 32, 64, 3, 2).y; // 80
  const p3 = c2f(x, 80, 64, 64, 2, true);
  x = conv(p3, 80, 64, 128, 3, 2).y; // 40
  const p4 = c2f(x, 40, 128, 128, 2, true);
  x = conv(p4, 40, 128, 256, 3, 2).y; // 20
  x = c2f(x, 20, 256, 256, 1, true);
  const p5 = sppf(x, 20, 256, 256);
  // Neck.
  const n4 = c2f(op("Concat", [upsample(p5), p4], { axis: 1 }), 40, 384, 128, 1, false);
  const out3 = c2f(op("Concat", [upsample(n4), p3], { axis: 1 }), 80, 192, 64, 1, false);
  const down3 = conv(out3, 80, 64, 64, 3, 2).y;
  const out4 = c2f(op("Concat", [down3, n4], { axis: 1 }), 40, 192, 128, 1, false);
  const down4 = conv(out4, 40, 128, 128, 3, 2).y;
  const out5 = c2f(op("Concat", [down4, p5], { axis: 1 }), 20, 384, 256, 1, false);

  // Detect head per level, flattened to [1, 144, cells] and joined.
  const levels: string[] = [];
  for (const [feat, side, ch] of [[out3, 80, 64], [out4, 40, 128], [out5, 20, 256]] as const) {
    const box = conv(conv(conv(feat, side, ch, 64, 3).y, side, 64, 64, 3).y, side, 64, 4 * REG_MAX, 1, 1, { act: false }).y;
    const cls = conv(conv(conv(feat, side, ch, 80, 3).y, side, 80, 80, 3).y, side, 80, CLASSES, 1, 1, { act: false, bias: CLASS_BIAS }).y;
    const joined = op("Concat", [box, cls], { axis: 1 });
    levels.push(op("Reshape", [joined, constant(int64Tensor(fresh("shape"), [3], [1, 4 * REG_MAX + CLASSES, -1]))]));
  }
  const all = op("Concat", levels, { axis: 2 });
  const [boxDist, clsLogits] = split(all, [4 * REG_MAX, CLASSES]) as [string, string];

  // DFL: softmax over 16 bins per side, expectation via a fixed 1x1 conv with weights 0..15.
  const bins = op("Reshape", [boxDist, constant(int64Tensor("dfl_shape", [4], [1, 4, REG_MAX, ANCHORS]))]);
  const probs = op("Softmax", [op("Transpose", [bins], { perm: [0, 2, 1, 3] })], { axis: 1 });
  const dflW = constant(floatTensor("dfl_w", [1, REG_MAX, 1, 1], Float32Array.from({ length: REG_MAX }, (_, i) => i)));
  const dist = op("Reshape", [op("Conv", [probs, dflW], { kernel_shape: [1, 1] }), constant(int64Tensor("dist_shape", [3], [1, 4, ANCHORS]))]);
  const [lt, rb] = split(dist, [2, 2]) as [string, string];
  const anchorXY = new Float32Array(2 * ANCHORS);
  const strideRow = new Float32Array(ANCHORS);
  let a = 0;
  for (const s of STRIDES) {
    const n = SIZE / s;
    for (let gy = 0; gy < n; gy++) {
      for (let gx = 0; gx < n; gx++, a++) {
        anchorXY[a] = gx + 0.5;
        anchorXY[ANCHORS + a] = gy + 0.5;
        strideRow[a] = s;
      }
    }
  }
  const anchors = constant(floatTensor("anchors", [1, 2, ANCHORS], anchorXY));
  const x1y1 = op("Sub", [anchors, lt]);
  const x2y2 = op("Add", [anchors, rb]);
  const centre = op("Mul", [op("Add", [x1y1, x2y2]), constant(floatTensor("half", [], [0.5]))]);
  const wh = op("Sub", [x2y2, x1y1]);
  const boxes = op("Mul", [op("Concat", [centre, wh], { axis: 1 }), constant(floatTensor("strides", [1, 1, ANCHORS], strideRow))]);
  op("Concat", [boxes, op("Sigmoid", [clsLogits])], { axis: 1 }, ["output0"]);

  return {
    macs: net.macs(),
    graph: {
      name: "yolo_cost",
      inputs: [{ name: "images", elemType: DataType.FLOAT, shape: [1, 3, SIZE, SIZE] }],
      outputs: [{ name: "output0", elemType: DataType.FLOAT, shape: [1, 4 + CLASSES, ANCHORS] }],
      initializers,
      nodes,
    },
  };
}

let cached: Built | undefined;
const built = () => (cached ??= build());

/** Multiply-accumulates per image of the convolutions (the elementwise SiLU, pooling and head add a little). */
export function yoloCostMacs(): number {
  return built().macs;
}

export function buildYoloCost(): Uint8Array {
  return encodeModel(built().graph, {
    irVersion: 8,
    opset: 17,
    producerName: "imgd models/test/generate-yolo-cost.ts",
    docString: "yolo-cost: YOLOv8n layer shapes, compute and output head, random shared weights; for benchmarks only",
  });
}

export function yoloCostManifest(): object {
  return {
    name: NAME,
    task: "object-detect",
    description: "Benchmark stand-in: YOLOv8n's compute and output head with random weights (detections are noise)",
    license: "MIT (generated by imgd)",
    source: "models/test/generate-yolo-cost.ts",
    generate: "bun models/test/generate-yolo-cost.ts",
    files: { model: { file: "model.onnx" } },
    params: { inputSize: SIZE, input: "images", output: "output0", layout: "yolov8", conf: 0.25, iou: 0.45, maxDet: 300 },
  };
}

/** Writes `<modelsDir>/yolo-cost.json` and `<modelsDir>/yolo-cost/model.onnx`; identical files are left alone. */
export function generateYoloCost(modelsDir: string): { path: string; written: boolean }[] {
  const dir = join(modelsDir, NAME);
  mkdirSync(dir, { recursive: true });
  const files: [string, Uint8Array][] = [
    [join(modelsDir, `${NAME}.json`), new TextEncoder().encode(`${JSON.stringify(yoloCostManifest(), null, 2)}\n`)],
    [join(dir, "model.onnx"), buildYoloCost()],
  ];
  return files.map(([path, bytes]) => ({ path, written: writeIfChanged(path, bytes) }));
}

if (import.meta.main) {
  const modelsDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "..", ".bench", "models"));
  for (const r of generateYoloCost(modelsDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
  console.log(`${(yoloCostMacs() / 1e9).toFixed(2)} GMACs per image`);
}
