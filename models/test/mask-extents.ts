// The colour-mask detectors' shared trick (test-yolo, test-scrfd): erode a soft mask, then read where it is covered
// along each axis from its max profiles, all in plain ONNX ops.
import type { Node } from "./onnx-writer.ts";

type Op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) => string;

/**
 * Erodes `mask` [n, c, size, size] by `radius` into "eroded", then per axis ("x": columns, "y": rows) writes
 * `${axis}_end` = last covered index + 1 = max(profile * (i + 1)) and `${axis}_start_rev` = size - first covered
 * index = max(profile * (size - i)). Needs initializers "plus_one" (i + 1) and "from_end" (size - i) of length size.
 */
export function erodedExtents(op: Op, mask: string, radius: number, keepdims: 0 | 1): void {
  // Erosion is a min filter, -maxpool(-x); MaxPool ignores its padding, so the image border erodes nothing.
  op("Neg", [mask], "mask_neg");
  const side = 2 * radius + 1;
  op("MaxPool", ["mask_neg"], "eroded_neg", { kernel_shape: [side, side], pads: [radius, radius, radius, radius] });
  op("Neg", ["eroded_neg"], "eroded");
  // The profile over axis 2 (rows) is a function of x, so it gives the column extent.
  for (const [axis, dim] of [["x", 2], ["y", 3]] as const) {
    op("ReduceMax", ["eroded"], `${axis}_profile`, { axes: [dim], keepdims: 0 });
    op("Mul", [`${axis}_profile`, "plus_one"], `${axis}_end_w`);
    op("ReduceMax", [`${axis}_end_w`], `${axis}_end`, { axes: [2], keepdims });
    op("Mul", [`${axis}_profile`, "from_end"], `${axis}_start_w`);
    op("ReduceMax", [`${axis}_start_w`], `${axis}_start_rev`, { axes: [2], keepdims });
  }
}
