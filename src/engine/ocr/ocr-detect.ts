// Text detection with PaddleOCR's DB (differentiable binarization) detector: resize to multiples of 32 within a
// size limit, normalise, run the model to a text probability map, then db_postprocess.py's box extraction:
// threshold, one region per connected component, min-area rectangle, box score, unclip, scale to the image.
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt, loadSharp } from "../native.ts";
import {
  clamp,
  convexHull,
  distance,
  meanInQuad,
  minAreaRect,
  orderCorners,
  rectCorners,
  rectSides,
  unclipRect,
  type Point,
  type Quad,
} from "./ocr-geometry.ts";
import type { OcrParams } from "./ocr-model.ts";

export interface RgbImage {
  /** Interleaved 8-bit RGB. */
  data: Uint8Array;
  width: number;
  height: number;
}

export interface DetectedBox {
  quad: Quad;
  /** Mean text probability inside the box before unclipping. */
  score: number;
}

export type DbParams = Pick<OcrParams, "detThresh" | "boxThresh" | "unclipRatio" | "maxCandidates">;

/** Boxes narrower than this (in map pixels) are noise, as in PaddleOCR (min_size = 3). */
const MIN_SIZE = 3;

/** DetResizeForTest, limit_type "max": shrink so the long side fits `limit`, then round each side to 32 (min 32). */
export function detInputSize(width: number, height: number, limit: number): { width: number; height: number } {
  const ratio = Math.max(width, height) > limit ? limit / Math.max(width, height) : 1;
  const round32 = (v: number) => Math.max(Math.round(Math.trunc(v * ratio) / 32) * 32, 32);
  return { width: round32(width), height: round32(height) };
}

/** NCHW float32 in BGR channel order, (x / 255 - mean) / std per channel. */
export function detTensor(rgb: RgbImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const plane = rgb.width * rgb.height;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const src = 2 - c; // BGR
    const scale = 1 / (255 * std[c]!);
    const shift = mean[c]! / std[c]!;
    const base = c * plane;
    for (let i = 0; i < plane; i++) out[base + i] = rgb.data[i * 3 + src]! * scale - shift;
  }
  return out;
}

/**
 * db_postprocess.py's boxes_from_bitmap on one probability map (`width` x `height`, row-major), with boxes scaled to
 * `dest` pixels and clipped to it. Components are 8-connected like OpenCV's outer contours.
 */
export function dbPostprocess(
  prob: Float32Array,
  width: number,
  height: number,
  params: DbParams,
  dest: { width: number; height: number },
): DetectedBox[] {
  if (prob.length !== width * height) throw new Error(`probability map of ${prob.length} values is not ${width}x${height}`);
  const label = new Int32Array(width * height);
  const boxes: DetectedBox[] = [];
  const stack: number[] = [];
  let components = 0;
  for (let start = 0; start < label.length && components < params.maxCandidates; start++) {
    if (label[start] !== 0 || !(prob[start]! > params.detThresh)) continue;
    components++;
    label[start] = components;
    stack.push(start);
    const boundary: Point[] = [];
    while (stack.length > 0) {
      const i = stack.pop()!;
      const x = i % width;
      const y = (i - x) / width;
      let edge = false;
      for (let dy = -1; dy <= 1; dy++) {
        for (let dx = -1; dx <= 1; dx++) {
          if (dx === 0 && dy === 0) continue;
          const nx = x + dx;
          const ny = y + dy;
          if (nx < 0 || ny < 0 || nx >= width || ny >= height) {
            edge = true;
            continue;
          }
          const j = ny * width + nx;
          if (!(prob[j]! > params.detThresh)) {
            edge = true;
            continue;
          }
          if (label[j] === 0) {
            label[j] = components;
            stack.push(j);
          }
        }
      }
      // Only boundary pixels can be hull vertices.
      if (edge) boundary.push([x, y]);
    }
    const box = boxFromComponent(boundary, prob, width, height, params, dest);
    if (box) boxes.push(box);
  }
  return boxes;
}

function boxFromComponent(
  points: Point[],
  prob: Float32Array,
  width: number,
  height: number,
  params: DbParams,
  dest: { width: number; height: number },
): DetectedBox | null {
  const rect = minAreaRect(convexHull(points));
  const sides = rectSides(rect);
  if (Math.min(sides.width, sides.height) < MIN_SIZE) return null;
  const score = meanInQuad(prob, width, height, rectCorners(rect));
  if (score < params.boxThresh) return null;
  const grown = unclipRect(rect, params.unclipRatio);
  const grownSides = rectSides(grown);
  if (Math.min(grownSides.width, grownSides.height) < MIN_SIZE + 2) return null;
  const sx = dest.width / width;
  const sy = dest.height / height;
  const quad = rectCorners(grown).map(
    ([x, y]) => [clamp(Math.round(x * sx), 0, dest.width), clamp(Math.round(y * sy), 0, dest.height)] as Point,
  );
  const ordered = orderCorners(quad);
  // filter_tag_det_res: boxes that clipping left (almost) empty are dropped.
  if (Math.trunc(distance(ordered[0], ordered[1])) <= 3 || Math.trunc(distance(ordered[0], ordered[3])) <= 3) return null;
  return { quad: ordered, score };
}

/** PaddleOCR's sorted_boxes: top to bottom, and left to right within a line (tops less than 10 px apart). */
export function readingOrder<T extends { quad: Quad }>(boxes: T[]): T[] {
  const out = [...boxes].sort((a, b) => a.quad[0][1] - b.quad[0][1] || a.quad[0][0] - b.quad[0][0]);
  for (let i = 0; i < out.length - 1; i++) {
    for (let j = i; j >= 0; j--) {
      const a = out[j]!;
      const b = out[j + 1]!;
      if (Math.abs(b.quad[0][1] - a.quad[0][1]) < 10 && b.quad[0][0] < a.quad[0][0]) {
        out[j] = b;
        out[j + 1] = a;
      } else break;
    }
  }
  return out;
}

/** Text boxes in `image` pixels, in reading order. */
export async function detectText(session: InferenceSession, image: RgbImage, params: OcrParams): Promise<DetectedBox[]> {
  const size = detInputSize(image.width, image.height, params.detLimitSideLen);
  const resized =
    size.width === image.width && size.height === image.height
      ? image
      : await resizeRgb(image, size.width, size.height);
  const ort = loadOrt();
  const input = new ort.Tensor("float32", detTensor(resized, params.detMean, params.detStd), [1, 3, size.height, size.width]);
  const out = await session.run({ [session.inputNames[0]!]: input });
  const map = out[session.outputNames[0]!]!;
  const [, , mh, mw] = map.dims as number[];
  if (mh !== size.height || mw !== size.width) {
    throw new Error(`text detector returned a ${mw}x${mh} map for a ${size.width}x${size.height} input`);
  }
  return readingOrder(dbPostprocess(map.data as Float32Array, mw, mh, params, image));
}

export async function resizeRgb(image: RgbImage, width: number, height: number): Promise<RgbImage> {
  const data = await loadSharp()(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(width, height, { fit: "fill" })
    .raw()
    .toBuffer();
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width, height };
}
