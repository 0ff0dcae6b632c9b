// Cuts each detected text box out of the image as an upright strip of fixed height (PaddleOCR's
// get_rotate_crop_image followed by the recogniser's resize, done in one resampling pass), and packs strips into the
// normalised NCHW tensors the classifier and recogniser take.
import { clamp, distance, type Quad } from "./ocr-geometry.ts";
import type { RgbImage } from "./ocr-detect.ts";

export interface LineCrop extends RgbImage {
  /** The box's corners in the order that makes the strip upright (vertical boxes are turned a quarter). */
  quad: Quad;
}

/** More samples per output pixel than this buys nothing visible; it bounds the work for huge boxes. */
const MAX_SUPERSAMPLE = 6;

/**
 * The box as a strip `height` pixels high whose width keeps the box's aspect ratio (at most `maxWidth`). A box at
 * least 1.5 times taller than wide is read as a vertical line and turned 90 degrees counter-clockwise, as PaddleOCR
 * does.
 */
export function cropLine(image: RgbImage, quad: Quad, height: number, maxWidth: number): LineCrop {
  let [tl, tr, br, bl] = quad;
  let w = Math.trunc(Math.max(distance(tl, tr), distance(bl, br)));
  let h = Math.trunc(Math.max(distance(tl, bl), distance(tr, br)));
  if (w > 0 && h / w >= 1.5) {
    [tl, tr, br, bl] = [tr, br, bl, tl];
    [w, h] = [h, w];
  }
  const oriented: Quad = [tl, tr, br, bl];
  const width = clamp(Math.ceil((height * Math.max(w, 1)) / Math.max(h, 1)), 1, maxWidth);
  return { ...warpQuad(image, oriented, width, height), quad: oriented };
}

/**
 * Resamples the quad onto a `width` x `height` grid (bilinear in both the corner mapping and the pixel lookup,
 * edges replicated). When the box is larger than the grid each output pixel averages a few samples, so downscaled
 * text is not aliased.
 */
export function warpQuad(image: RgbImage, quad: Quad, width: number, height: number): RgbImage {
  const [tl, tr, br, bl] = quad;
  const boxW = Math.max(distance(tl, tr), distance(bl, br));
  const boxH = Math.max(distance(tl, bl), distance(tr, br));
  const ns = clamp(Math.ceil(boxW / width), 1, MAX_SUPERSAMPLE);
  const nt = clamp(Math.ceil(boxH / height), 1, MAX_SUPERSAMPLE);
  const out = new Uint8Array(width * height * 3);
  const rgb = [0, 0, 0];
  const src = image.data;
  const maxX = image.width - 1;
  const maxY = image.height - 1;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let r = 0;
      let g = 0;
      let b = 0;
      for (let j = 0; j < nt; j++) {
        const t = (y + (j + 0.5) / nt) / height;
        for (let i = 0; i < ns; i++) {
          const s = (x + (i + 0.5) / ns) / width;
          const px = (1 - t) * ((1 - s) * tl[0] + s * tr[0]) + t * ((1 - s) * bl[0] + s * br[0]);
          const py = (1 - t) * ((1 - s) * tl[1] + s * tr[1]) + t * ((1 - s) * bl[1] + s * br[1]);
          bilinear(src, image.width, clamp(px, 0, maxX), clamp(py, 0, maxY), maxX, maxY, rgb);
          r += rgb[0]!;
          g += rgb[1]!;
          b += rgb[2]!;
        }
      }
      const n = ns * nt;
      const o = (y * width + x) * 3;
      out[o] = Math.round(r / n);
      out[o + 1] = Math.round(g / n);
      out[o + 2] = Math.round(b / n);
    }
  }
  return { data: out, width, height };
}

function bilinear(src: Uint8Array, stride: number, x: number, y: number, maxX: number, maxY: number, out: number[]): void {
  const x0 = Math.floor(x);
  const y0 = Math.floor(y);
  const x1 = Math.min(x0 + 1, maxX);
  const y1 = Math.min(y0 + 1, maxY);
  const fx = x - x0;
  const fy = y - y0;
  const a = (y0 * stride + x0) * 3;
  const b = (y0 * stride + x1) * 3;
  const c = (y1 * stride + x0) * 3;
  const d = (y1 * stride + x1) * 3;
  for (let k = 0; k < 3; k++) {
    const top = src[a + k]! + (src[b + k]! - src[a + k]!) * fx;
    const bottom = src[c + k]! + (src[d + k]! - src[c + k]!) * fx;
    out[k] = top + (bottom - top) * fy;
  }
}

/** The strip turned upside down (the classifier said it was read 180 degrees rotated). */
export function rotate180<T extends RgbImage>(crop: T): T {
  const n = crop.width * crop.height;
  const data = new Uint8Array(n * 3);
  for (let i = 0; i < n; i++) {
    const s = i * 3;
    const d = (n - 1 - i) * 3;
    data[d] = crop.data[s]!;
    data[d + 1] = crop.data[s + 1]!;
    data[d + 2] = crop.data[s + 2]!;
  }
  return { ...crop, data };
}

/**
 * Writes strips into one NCHW batch of `tensorWidth` x `height`, BGR, (x / 255 - 0.5) / 0.5, each strip left-aligned
 * and the rest zero (the padding PP-OCR's classifier and recogniser were trained with).
 */
export function stripBatchTensor(strips: RgbImage[], height: number, tensorWidth: number): Float32Array {
  const plane = height * tensorWidth;
  const out = new Float32Array(strips.length * 3 * plane);
  strips.forEach((strip, n) => {
    if (strip.height !== height) throw new Error(`strip is ${strip.height} px high, the batch ${height}`);
    const w = Math.min(strip.width, tensorWidth);
    for (let c = 0; c < 3; c++) {
      const base = (n * 3 + c) * plane;
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < w; x++) out[base + y * tensorWidth + x] = strip.data[(y * strip.width + x) * 3 + 2 - c]! / 127.5 - 1;
      }
    }
  });
  return out;
}
