// YOLO's input: the image resized keeping its aspect ratio into a size x size square, padded with grey 114, as
// RGB planes /255 (ultralytics LetterBox(auto=False, scaleup=True), the way its ONNX exports are fed).
//
// The resize is our own port of OpenCV's cv2.resize(INTER_LINEAR) for 8-bit images, not sharp: libvips' linear
// reducer antialiases when shrinking and cv2 does not, and the models were trained on cv2's pixels. It follows
// OpenCV's generic fixed-point path (half-pixel centres, two taps, 11-bit weights, the SIMD vertical pass's
// rounding, and the exact 2x shrink that OpenCV hands to INTER_AREA). OpenCV's scalar tail at the end of each row
// rounds in one step instead of two and can differ from ours by 1 there; IPP builds may differ more.

export const YOLO_PAD_VALUE = 114;

/** Where the image sits inside the square, and how to map input-space boxes back. */
export interface LetterboxGeometry {
  /** Side of the square model input. */
  size: number;
  /** The image the square was made from (decoded pixels). */
  srcWidth: number;
  srcHeight: number;
  /** min(size / h, size / w); never capped at 1, small images are enlarged. */
  ratio: number;
  newWidth: number;
  newHeight: number;
  left: number;
  top: number;
  right: number;
  bottom: number;
}

/** Python's round(): halves go to the even neighbour (new_unpad uses it). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

export function letterboxGeometry(width: number, height: number, size: number): LetterboxGeometry {
  if (!(width > 0 && height > 0)) throw new Error(`letterbox: image has no pixels (${width}x${height})`);
  const ratio = Math.min(size / height, size / width);
  // A 20000x1 panorama still keeps one row.
  const newWidth = Math.max(1, roundHalfEven(width * ratio));
  const newHeight = Math.max(1, roundHalfEven(height * ratio));
  const dw = (size - newWidth) / 2;
  const dh = (size - newHeight) / 2;
  // The -0.1/+0.1 puts the odd pixel of padding at the bottom/right; `+ 0` turns round(-0.1) = -0 into 0.
  return {
    size,
    srcWidth: width,
    srcHeight: height,
    ratio,
    newWidth,
    newHeight,
    top: Math.round(dh - 0.1) + 0,
    bottom: Math.round(dh + 0.1),
    left: Math.round(dw - 0.1) + 0,
    right: Math.round(dw + 0.1),
  };
}

/**
 * A box in model-input pixels back to the letterboxed image's pixels, clipped to it: ultralytics' scale_boxes,
 * which divides by the ratio rather than by newWidth / width.
 */
export function unletterboxBox(box: readonly number[], g: LetterboxGeometry): [number, number, number, number] {
  const clip = (v: number, max: number) => Math.min(Math.max(v, 0), max);
  return [
    clip((box[0]! - g.left) / g.ratio, g.srcWidth),
    clip((box[1]! - g.top) / g.ratio, g.srcHeight),
    clip((box[2]! - g.left) / g.ratio, g.srcWidth),
    clip((box[3]! - g.top) / g.ratio, g.srcHeight),
  ];
}

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

interface LinearTaps {
  /** First source index of each output; the second tap is the next index, clamped. */
  offset: Int32Array;
  w0: Int32Array;
  w1: Int32Array;
}

// OpenCV's resize setup for INTER_LINEAR: fx in float32, clamped at both borders, weights rounded to 11 bits.
function linearTaps(inSize: number, outSize: number): LinearTaps {
  const scale = inSize / outSize;
  const offset = new Int32Array(outSize);
  const w0 = new Int32Array(outSize);
  const w1 = new Int32Array(outSize);
  for (let d = 0; d < outSize; d++) {
    let f = Math.fround((d + 0.5) * scale - 0.5);
    let s = Math.floor(f);
    f = Math.fround(f - s);
    if (s < 0) {
      s = 0;
      f = 0;
    }
    if (s >= inSize - 1) {
      s = inSize - 1;
      f = 0;
    }
    offset[d] = s;
    w0[d] = roundHalfEven(Math.fround(1 - f) * COEF_SCALE);
    w1[d] = roundHalfEven(f * COEF_SCALE);
  }
  return { offset, w0, w1 };
}

/** Signed 16x16 multiply keeping the high half, as _mm_mulhi_epi16. */
function mulHi(a: number, b: number): number {
  return (a * b) >> 16;
}

/** cv2.resize(src, (outW, outH), interpolation=INTER_LINEAR) on interleaved 8-bit RGB. */
export function resizeLinearRgb(src: Uint8Array, inW: number, inH: number, outW: number, outH: number): Uint8Array {
  if (outW === inW && outH === inH) return src;
  const dst = new Uint8Array(outW * outH * 3);
  if (inW === outW * 2 && inH === outH * 2) {
    // OpenCV switches an exact 2x shrink to INTER_AREA, which averages each 2x2 block.
    for (let y = 0; y < outH; y++) {
      const r0 = 2 * y * inW * 3;
      const r1 = r0 + inW * 3;
      for (let x = 0; x < outW; x++) {
        for (let c = 0; c < 3; c++) {
          const i = 6 * x + c;
          dst[(y * outW + x) * 3 + c] = (src[r0 + i]! + src[r0 + i + 3]! + src[r1 + i]! + src[r1 + i + 3]! + 2) >> 2;
        }
      }
    }
    return dst;
  }
  const tx = linearTaps(inW, outW);
  const ty = linearTaps(inH, outH);
  const rowLen = outW * 3;
  // Horizontal pass per source row (cached: consecutive output rows share source rows), kept at 11-bit scale.
  const rowCache = new Map<number, Int32Array>();
  const hrow = (sy: number): Int32Array => {
    let row = rowCache.get(sy);
    if (row) return row;
    row = new Int32Array(rowLen);
    const base = sy * inW * 3;
    for (let x = 0; x < outW; x++) {
      const p0 = base + tx.offset[x]! * 3;
      const p1 = tx.offset[x]! + 1 < inW ? p0 + 3 : p0;
      const a0 = tx.w0[x]!;
      const a1 = tx.w1[x]!;
      for (let c = 0; c < 3; c++) row[x * 3 + c] = src[p0 + c]! * a0 + src[p1 + c]! * a1;
    }
    if (rowCache.size > 4) rowCache.clear();
    rowCache.set(sy, row);
    return row;
  };
  for (let y = 0; y < outH; y++) {
    const sy = ty.offset[y]!;
    const s0 = hrow(sy);
    const s1 = hrow(Math.min(sy + 1, inH - 1));
    const b0 = ty.w0[y]!;
    const b1 = ty.w1[y]!;
    const out = y * rowLen;
    for (let i = 0; i < rowLen; i++) {
      // The SIMD pass: drop 4 bits, 16-bit high multiply per tap, then a rounding shift by 2 with saturation.
      const v = (mulHi(s0[i]! >> 4, b0) + mulHi(s1[i]! >> 4, b1) + 2) >> 2;
      dst[out + i] = v < 0 ? 0 : v > 255 ? 255 : v;
    }
  }
  return dst;
}

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

/** Writes 3 x size x size floats (RGB planes, /255) at `out[offset..]` and returns the geometry to map boxes back. */
export function letterboxInto(
  img: RgbImage,
  size: number,
  out: Float32Array,
  offset = 0,
  pad = YOLO_PAD_VALUE,
): LetterboxGeometry {
  const { width, height, data } = img;
  if (data.length < width * height * 3) throw new Error(`letterbox: ${width}x${height} RGB needs ${width * height * 3} bytes, got ${data.length}`);
  if (out.length < offset + 3 * size * size) throw new Error(`letterbox: output has no room for 3x${size}x${size} at ${offset}`);
  const g = letterboxGeometry(width, height, size);
  const resized = resizeLinearRgb(data, width, height, g.newWidth, g.newHeight);
  const plane = size * size;
  const padValue = pad / 255;
  out.fill(padValue, offset, offset + 3 * plane);
  // x / 255 in float32 per byte value, the same numbers as numpy's float32 division.
  const table = SCALE_TABLE;
  for (let y = 0; y < g.newHeight; y++) {
    const srcRow = y * g.newWidth * 3;
    const dstRow = offset + (g.top + y) * size + g.left;
    for (let x = 0; x < g.newWidth; x++) {
      const p = srcRow + x * 3;
      out[dstRow + x] = table[resized[p]!]!;
      out[dstRow + plane + x] = table[resized[p + 1]!]!;
      out[dstRow + 2 * plane + x] = table[resized[p + 2]!]!;
    }
  }
  return g;
}

const SCALE_TABLE = Float32Array.from({ length: 256 }, (_, v) => v / 255);

export function letterbox(img: RgbImage, size: number, pad = YOLO_PAD_VALUE): { tensor: Float32Array; geometry: LetterboxGeometry } {
  const tensor = new Float32Array(3 * size * size);
  return { tensor, geometry: letterboxInto(img, size, tensor, 0, pad) };
}
