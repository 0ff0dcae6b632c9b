// SCRFD decoding, as insightface's model_zoo/scrfd.py does it, so a real det_10g / det_500m export works unchanged:
// the image is resized (cv2 INTER_LINEAR, aspect kept, int() sizes) into the top-left of a black input square; per
// stride the net gives a score, four distances (left, top, right, bottom) and five landmark offsets per anchor, in
// stride units from the anchor centre (col * stride, row * stride), each centre repeated once per anchor; candidates
// at or above the threshold from every stride are sorted by score and merged by NMS (IoU with +1 areas, kept when
// IoU <= 0.4).

/** 5 landmarks (left eye, right eye, nose, left mouth corner, right mouth corner) as x0 y0 x1 y1 ... */
export type Landmarks = [number, number, number, number, number, number, number, number, number, number];

export interface RawFace {
  box: [number, number, number, number];
  landmarks: Landmarks;
  score: number;
}

export interface ScrfdLayout {
  strides: number[];
  anchorsPerLocation: number;
}

/**
 * scrfd.py picks the layout from the output count: 6 or 9 outputs are strides 8/16/32 with 2 anchors, 10 or 15
 * are strides 8..128 with 1 anchor; only the 9 and 15 carry landmarks, and alignment needs them.
 */
export function scrfdLayout(outputCount: number): ScrfdLayout {
  if (outputCount === 9) return { strides: [8, 16, 32], anchorsPerLocation: 2 };
  if (outputCount === 15) return { strides: [8, 16, 32, 64, 128], anchorsPerLocation: 1 };
  if (outputCount === 6 || outputCount === 10) {
    throw new Error(`this SCRFD model has no landmark outputs (${outputCount} outputs); faces need a *_kps model with 9 or 15 outputs`);
  }
  throw new Error(`not an SCRFD layout: ${outputCount} outputs (expected 9 or 15: scores, boxes and landmarks per stride)`);
}

/** Anchor centres of one stride, x y interleaved, each location repeated `anchors` times (row-major). */
export function anchorCenters(inputWidth: number, inputHeight: number, stride: number, anchors: number): Float32Array {
  const w = Math.floor(inputWidth / stride);
  const h = Math.floor(inputHeight / stride);
  const out = new Float32Array(w * h * anchors * 2);
  let i = 0;
  for (let row = 0; row < h; row++) {
    for (let col = 0; col < w; col++) {
      for (let a = 0; a < anchors; a++) {
        out[i++] = col * stride;
        out[i++] = row * stride;
      }
    }
  }
  return out;
}

export interface ScrfdOutput {
  data: Float32Array;
  dims: readonly number[];
}

export interface DecodeOptions {
  inputWidth: number;
  inputHeight: number;
  /** Candidates scoring below this are dropped before NMS (insightface's det_thresh, 0.5). */
  threshold: number;
  /** NMS IoU above which the lower-scoring box is dropped (scrfd.py: 0.4). */
  nmsThreshold: number;
}

/** Outputs in the session's order (scores per stride, then boxes, then landmarks) -> faces in input pixels. */
export function decodeScrfd(outputs: readonly ScrfdOutput[], opts: DecodeOptions): RawFace[] {
  const { strides, anchorsPerLocation } = scrfdLayout(outputs.length);
  const n = strides.length;
  const candidates: RawFace[] = [];
  strides.forEach((stride, level) => {
    const centers = anchorCenters(opts.inputWidth, opts.inputHeight, stride, anchorsPerLocation);
    const count = centers.length / 2;
    const scores = outputs[level]!;
    const boxes = outputs[level + n]!;
    const kps = outputs[level + 2 * n]!;
    for (const [what, out, per] of [["score", scores, 1], ["bbox", boxes, 4], ["kps", kps, 10]] as const) {
      if (out.data.length !== count * per) {
        throw new Error(
          `SCRFD output ${what} of stride ${stride} has ${out.data.length} values (dims [${out.dims.join(", ")}]), expected ${count} x ${per} for a ${opts.inputWidth}x${opts.inputHeight} input`,
        );
      }
    }
    for (let i = 0; i < count; i++) {
      const score = scores.data[i]!;
      if (!(score >= opts.threshold)) continue;
      const cx = centers[2 * i]!;
      const cy = centers[2 * i + 1]!;
      const b = boxes.data.subarray(4 * i, 4 * i + 4);
      const k = kps.data.subarray(10 * i, 10 * i + 10);
      const landmarks = new Array<number>(10) as Landmarks;
      for (let p = 0; p < 10; p += 2) {
        landmarks[p] = cx + k[p]! * stride;
        landmarks[p + 1] = cy + k[p + 1]! * stride;
      }
      candidates.push({
        box: [cx - b[0]! * stride, cy - b[1]! * stride, cx + b[2]! * stride, cy + b[3]! * stride],
        landmarks,
        score,
      });
    }
  });
  return nmsFaces(candidates, opts.nmsThreshold);
}

/** Greedy NMS in score order with scrfd.py's pixel-inclusive areas ((x1 - x0 + 1) * (y1 - y0 + 1)). */
export function nmsFaces(faces: readonly RawFace[], iouThreshold: number): RawFace[] {
  const order = [...faces].sort((a, b) => b.score - a.score);
  const area = (f: RawFace) => (f.box[2] - f.box[0] + 1) * (f.box[3] - f.box[1] + 1);
  const kept: RawFace[] = [];
  const suppressed = new Uint8Array(order.length);
  for (let i = 0; i < order.length; i++) {
    if (suppressed[i]) continue;
    const a = order[i]!;
    kept.push(a);
    const areaA = area(a);
    for (let j = i + 1; j < order.length; j++) {
      if (suppressed[j]) continue;
      const b = order[j]!;
      const w = Math.max(0, Math.min(a.box[2], b.box[2]) - Math.max(a.box[0], b.box[0]) + 1);
      const h = Math.max(0, Math.min(a.box[3], b.box[3]) - Math.max(a.box[1], b.box[1]) + 1);
      const inter = w * h;
      if (inter / (areaA + area(b) - inter) > iouThreshold) suppressed[j] = 1;
    }
  }
  return kept;
}

/** How scrfd.py's detect() fits an image into the input: scaled by `scale`, placed at the top-left. */
export interface DetectGeometry {
  inputWidth: number;
  inputHeight: number;
  newWidth: number;
  newHeight: number;
  /** new_height / image height; boxes are divided by it to go back to the image. */
  scale: number;
}

export function detectGeometry(width: number, height: number, inputWidth: number, inputHeight: number): DetectGeometry {
  if (!(width > 0 && height > 0)) throw new Error(`face detection: image has no pixels (${width}x${height})`);
  const imRatio = height / width;
  const modelRatio = inputHeight / inputWidth;
  let newWidth: number;
  let newHeight: number;
  if (imRatio > modelRatio) {
    newHeight = inputHeight;
    newWidth = Math.trunc(newHeight / imRatio);
  } else {
    newWidth = inputWidth;
    newHeight = Math.trunc(newWidth * imRatio);
  }
  // A 20000x10 panorama would truncate to zero rows; keep one (scrfd.py would crash in cv2.resize).
  newWidth = Math.max(1, newWidth);
  newHeight = Math.max(1, newHeight);
  return { inputWidth, inputHeight, newWidth, newHeight, scale: newHeight / height };
}

/** Input pixels -> image pixels: scrfd.py divides boxes and landmarks by det_scale. */
export function faceToImage(face: RawFace, g: DetectGeometry): RawFace {
  const s = g.scale;
  return {
    box: face.box.map((v) => v / s) as RawFace["box"],
    landmarks: face.landmarks.map((v) => v / s) as Landmarks,
    score: face.score,
  };
}
