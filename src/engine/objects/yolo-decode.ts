// A YOLO detector's raw output -> boxes: confidence threshold, per-class NMS, as ultralytics' non_max_suppression
// (multi_label=False, agnostic=False). Boxes stay in model-input pixels here; letterbox.ts maps them back.
//
// Layouts:
//   yolov8 (YOLOv8, YOLO11): [1, 4 + C, N] channels-first, cx cy w h then C class scores, no objectness.
//   yolov5:                  [1, N, 5 + C] rows, cx cy w h objectness then C class scores; confidence = obj * cls.

export type YoloLayout = "yolov8" | "yolov5";

export interface DecodeOptions {
  classes: number;
  /** Keep candidates whose confidence is above this (ultralytics: strictly greater). */
  conf: number;
  /** Same-class boxes overlapping a kept one by more than this IoU are dropped. */
  iou: number;
  /** At most this many boxes per image, best first. */
  maxDet: number;
  /** Candidates considered by NMS, best first (ultralytics max_nms). */
  maxNms?: number;
  /** Read from the tensor's shape when absent. */
  layout?: YoloLayout;
}

export interface RawDetection {
  classId: number;
  score: number;
  /** x0 y0 x1 y1 in model-input pixels. */
  box: [number, number, number, number];
}

/** Which layout a [1, a, b] output has for `classes` classes. */
export function detectLayout(dims: readonly number[], classes: number): YoloLayout {
  if (dims.length === 3 && dims[0] === 1) {
    if (dims[1] === 4 + classes) return "yolov8";
    if (dims[2] === 5 + classes) return "yolov5";
  }
  throw new Error(
    `unexpected detector output shape [${dims.join(", ")}]: expected [1, ${4 + classes}, N] (YOLOv8/11) or [1, N, ${5 + classes}] (YOLOv5)`,
  );
}

export function decodeYolo(output: Float32Array, dims: readonly number[], opts: DecodeOptions): RawDetection[] {
  const layout = opts.layout ?? detectLayout(dims, opts.classes);
  if (layout !== detectLayout(dims, opts.classes)) throw new Error(`output shape [${dims.join(", ")}] is not the ${layout} layout`);
  const count = layout === "yolov8" ? dims[2]! : dims[1]!;
  if (output.length !== dims.reduce((a, b) => a * b, 1)) throw new Error(`output has ${output.length} values for shape [${dims.join(", ")}]`);
  const candidates = layout === "yolov8" ? candidatesV8(output, count, opts) : candidatesV5(output, count, opts);
  candidates.sort((a, b) => b.score - a.score);
  if (opts.maxNms !== undefined && candidates.length > opts.maxNms) candidates.length = opts.maxNms;
  return nmsPerClass(candidates, opts.iou, opts.maxDet);
}

function candidatesV8(out: Float32Array, n: number, opts: DecodeOptions): RawDetection[] {
  const found: RawDetection[] = [];
  for (let a = 0; a < n; a++) {
    let best = -Infinity;
    let cls = 0;
    for (let c = 0; c < opts.classes; c++) {
      const s = out[(4 + c) * n + a]!;
      if (s > best) {
        best = s;
        cls = c;
      }
    }
    if (!(best > opts.conf)) continue;
    found.push({ classId: cls, score: best, box: xywhToXyxy(out[a]!, out[n + a]!, out[2 * n + a]!, out[3 * n + a]!) });
  }
  return found;
}

function candidatesV5(out: Float32Array, n: number, opts: DecodeOptions): RawDetection[] {
  const found: RawDetection[] = [];
  const stride = 5 + opts.classes;
  for (let a = 0; a < n; a++) {
    const row = a * stride;
    const obj = out[row + 4]!;
    if (!(obj > opts.conf)) continue;
    let best = -Infinity;
    let cls = 0;
    for (let c = 0; c < opts.classes; c++) {
      const s = out[row + 5 + c]! * obj;
      if (s > best) {
        best = s;
        cls = c;
      }
    }
    if (!(best > opts.conf)) continue;
    found.push({ classId: cls, score: best, box: xywhToXyxy(out[row]!, out[row + 1]!, out[row + 2]!, out[row + 3]!) });
  }
  return found;
}

function xywhToXyxy(cx: number, cy: number, w: number, h: number): [number, number, number, number] {
  return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2];
}

export function iou(a: readonly number[], b: readonly number[]): number {
  const iw = Math.min(a[2]!, b[2]!) - Math.max(a[0]!, b[0]!);
  const ih = Math.min(a[3]!, b[3]!) - Math.max(a[1]!, b[1]!);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = (a[2]! - a[0]!) * (a[3]! - a[1]!) + (b[2]! - b[0]!) * (b[3]! - b[1]!) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Greedy NMS within each class over `sorted` (best first): a box of another class never suppresses, so a person
 * on a motorcycle keeps both boxes. Returns at most `maxDet`, best first.
 */
export function nmsPerClass(sorted: RawDetection[], iouThreshold: number, maxDet: number): RawDetection[] {
  const keptByClass = new Map<number, RawDetection[]>();
  const kept: RawDetection[] = [];
  for (const d of sorted) {
    if (kept.length >= maxDet) break;
    const same = keptByClass.get(d.classId) ?? [];
    if (same.some((k) => iou(k.box, d.box) > iouThreshold)) continue;
    same.push(d);
    keptByClass.set(d.classId, same);
    kept.push(d);
  }
  return kept;
}
