// Writes "test-yolo": a small real ONNX object detector with YOLOv8's exact signature (images 1x3x640x640 ->
// output0 1x84x8400, cx cy w h + 80 COCO class scores per anchor over the 80x80, 40x40 and 20x20 grids), whose
// output is computed from the pixels: saturated red regions are "car", saturated blue ones "person", boxed where
// they are. Tests need detections that mean something without pretrained weights.
//
//   bun models/test/generate-yolo.ts [outDir]      (default models/test-yolo/; also run by generate.ts)
//
// The net: a 1x1 colour Conv + Sigmoid gives a red and a blue mask; a 5x5 erosion drops stray pixels of natural
// photos; the row/column extents of each eroded mask (grown back by the erosion radius) give one box per colour;
// each grid cell's score is a sigmoid of the fraction of it the mask covers, and a cell reports the box of the
// colour it belongs to. So: one box per colour per image, placed to about a pixel of the 640x640 input.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { writeIfChanged } from "./generate.ts";
import { erodedExtents } from "./mask-extents.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph, type Node } from "./onnx-writer.ts";

export const SIZE = 640;
export const STRIDES = [8, 16, 32] as const;
export const ANCHORS = STRIDES.reduce((n, s) => n + (SIZE / s) ** 2, 0);
export const CLASSES = 80;
/** COCO ids (ultralytics order) of what each colour mask reports. */
export const COLOUR_CLASSES = { red: 2, blue: 0 } as const;
/** A pixel is "red" when R - (G + B) / 2 > 0.5 (0..1 scale), likewise for blue; natural colours rarely are. */
const COLOUR_MARGIN = 0.5;
/**
 * Soft enough that reddish natural pixels near the margin stay out; the price is that a blended edge pixel counts
 * only when mostly covered, so boxes sit about one input pixel inside a planted rectangle's edges.
 */
const MASK_SHARPNESS = 30;
const EROSION_RADIUS = 2;
/** Cell score = sigmoid(12 * (coverage - 0.5)): a fully covered cell scores 0.9975, a quarter-covered one 0.047. */
const SCORE_GAIN = 12;

function graph(): Graph {
  const k = MASK_SHARPNESS;
  // Rows: red, blue. Columns: R, G, B.
  const colourW = [k, -k / 2, -k / 2, -k / 2, -k / 2, k];
  const classMap = new Float32Array(CLASSES * 2);
  classMap[COLOUR_CLASSES.red * 2 + 0] = 1;
  classMap[COLOUR_CLASSES.blue * 2 + 1] = 1;
  const plusOne = Float32Array.from({ length: SIZE }, (_, i) => i + 1);
  const fromEnd = Float32Array.from({ length: SIZE }, (_, i) => SIZE - i);

  const nodes: Node[] = [];
  const op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) => {
    nodes.push({ opType, inputs, outputs: [output], attributes });
    return output;
  };

  op("Conv", ["images", "colour_w", "colour_b"], "colour_logits", { kernel_shape: [1, 1] });
  op("Sigmoid", ["colour_logits"], "mask");
  erodedExtents(op, "mask", EROSION_RADIUS, 1);
  // Per colour, the box from the extents, grown back by the erosion radius and clipped to the image.
  for (const axis of ["x", "y"] as const) {
    op("Add", [`${axis}_end`, "radius"], `${axis}_end_grown`);
    op("Min", [`${axis}_end_grown`, "size"], `${axis}1`);
    op("Sub", ["size", `${axis}_start_rev`], `${axis}_start`);
    op("Sub", [`${axis}_start`, "radius"], `${axis}_start_grown`);
    op("Max", [`${axis}_start_grown`, "zero"], `${axis}0`);
    op("Add", [`${axis}0`, `${axis}1`], `${axis}_sum`);
    op("Mul", [`${axis}_sum`, "half"], `c${axis}`);
    op("Sub", [`${axis}1`, `${axis}0`], `${axis}_len`);
  }
  op("Concat", ["cx", "cy", "x_len", "y_len"], "colour_boxes", { axis: 2 });
  op("Transpose", ["colour_boxes"], "colour_boxes_t", { perm: [0, 2, 1] });

  const coverage: string[] = [];
  for (const s of STRIDES) {
    op("AveragePool", ["mask"], `cover_${s}`, { kernel_shape: [s, s], strides: [s, s] });
    coverage.push(op("Reshape", [`cover_${s}`, "flat_shape"], `cover_${s}_flat`));
  }
  op("Concat", coverage, "coverage", { axis: 2 });
  op("Mul", ["coverage", "score_gain"], "coverage_scaled");
  op("Add", ["coverage_scaled", "score_bias"], "score_logits");
  op("Sigmoid", ["score_logits"], "colour_scores");
  op("MatMul", ["class_map", "colour_scores"], "class_scores");
  // Each anchor reports the box of the colour it scores for (a score-weighted mix where both are near zero).
  op("ReduceSum", ["colour_scores", "axis1"], "score_total", { keepdims: 1 });
  op("Add", ["score_total", "eps"], "score_norm");
  op("Div", ["colour_scores", "score_norm"], "colour_weights");
  op("MatMul", ["colour_boxes_t", "colour_weights"], "anchor_boxes");
  op("Concat", ["anchor_boxes", "class_scores"], "output0", { axis: 1 });

  return {
    name: "test_yolo",
    inputs: [{ name: "images", elemType: DataType.FLOAT, shape: [1, 3, SIZE, SIZE] }],
    outputs: [{ name: "output0", elemType: DataType.FLOAT, shape: [1, 4 + CLASSES, ANCHORS] }],
    initializers: [
      floatTensor("colour_w", [2, 3, 1, 1], colourW),
      floatTensor("colour_b", [2], [-k * COLOUR_MARGIN, -k * COLOUR_MARGIN]),
      floatTensor("plus_one", [SIZE], plusOne),
      floatTensor("from_end", [SIZE], fromEnd),
      floatTensor("radius", [], [EROSION_RADIUS]),
      floatTensor("size", [], [SIZE]),
      floatTensor("zero", [], [0]),
      floatTensor("half", [], [0.5]),
      int64Tensor("flat_shape", [3], [1, 2, -1]),
      floatTensor("score_gain", [], [SCORE_GAIN]),
      floatTensor("score_bias", [], [-SCORE_GAIN / 2]),
      floatTensor("class_map", [CLASSES, 2], classMap),
      int64Tensor("axis1", [1], [1]),
      floatTensor("eps", [], [1e-6]),
    ],
    nodes,
  };
}

export function buildTestYolo(): Uint8Array {
  return encodeModel(graph(), {
    irVersion: 8,
    opset: 17,
    producerName: "imgd models/test/generate-yolo.ts",
    docString: "test-yolo: YOLOv8 signature; red regions -> car, blue regions -> person",
  });
}

export function generateTestYolo(outDir: string): { path: string; written: boolean }[] {
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, "model.onnx");
  return [{ path, written: writeIfChanged(path, buildTestYolo()) }];
}

if (import.meta.main) {
  const outDir = resolve(process.argv[2] ?? join(import.meta.dir, "..", "test-yolo"));
  for (const r of generateTestYolo(outDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
}
