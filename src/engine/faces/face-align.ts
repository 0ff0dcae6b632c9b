// ArcFace alignment: the similarity transform (rotation, uniform scale, translation; never a reflection) that best
// maps the 5 detected landmarks onto ArcFace's 112x112 template, and a bilinear warp of the image through it, as
// insightface's norm_crop (skimage SimilarityTransform + cv2.warpAffine, black border) does. Also the crop's blur
// score: the variance of its Laplacian (cv2.Laplacian ksize 1 on the grey crop), low for a soft, out-of-focus face.
import type { Landmarks } from "./face-detect.ts";

export const ALIGNED_SIZE = 112;

/** insightface's arcface_dst: where the 5 landmarks sit in a 112x112 ArcFace input. */
export const ARCFACE_TEMPLATE: Landmarks = [
  38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041,
];

/** x' = a x - b y + tx, y' = b x + a y + ty: scale sqrt(a² + b²), rotation atan2(b, a). */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

/**
 * Least-squares similarity from `src` to `dst` points (x y interleaved). Treating points as complex numbers, the
 * best a + ib is sum(conj(z) w) / sum(|z|²) over the centred points: the same optimum as Umeyama's SVD with its
 * reflection fix, in closed form. Null when the source points all coincide (or are not finite).
 */
export function estimateSimilarity(src: ArrayLike<number>, dst: ArrayLike<number>): Similarity | null {
  const n = src.length / 2;
  if (n < 2 || src.length !== dst.length) throw new Error(`similarity needs two equal lists of at least 2 points, got ${src.length / 2} and ${dst.length / 2}`);
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[2 * i]!;
    sy += src[2 * i + 1]!;
    dx += dst[2 * i]!;
    dy += dst[2 * i + 1]!;
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let dotRe = 0, dotIm = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const zx = src[2 * i]! - sx;
    const zy = src[2 * i + 1]! - sy;
    const wx = dst[2 * i]! - dx;
    const wy = dst[2 * i + 1]! - dy;
    dotRe += zx * wx + zy * wy;
    dotIm += zx * wy - zy * wx;
    norm += zx * zx + zy * zy;
  }
  if (!(norm > 1e-12) || !Number.isFinite(norm)) return null;
  const a = dotRe / norm;
  const b = dotIm / norm;
  if (!Number.isFinite(a) || !Number.isFinite(b) || a * a + b * b < 1e-24) return null;
  return { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
}

export function applySimilarity(t: Similarity, x: number, y: number): [number, number] {
  return [t.a * x - t.b * y + t.tx, t.b * x + t.a * y + t.ty];
}

export function invertSimilarity(t: Similarity): Similarity {
  const d = t.a * t.a + t.b * t.b;
  const a = t.a / d;
  const b = -t.b / d;
  return { a, b, tx: -(a * t.tx - b * t.ty), ty: -(b * t.tx + a * t.ty) };
}

export interface RgbPixels {
  data: Uint8Array;
  width: number;
  height: number;
}

/**
 * cv2.warpAffine(src, M, (size, size), INTER_LINEAR, BORDER_CONSTANT 0): each output pixel (x, y) samples the
 * source at M⁻¹(x, y), integer coordinates being pixel centres; neighbours outside the image count as black.
 * (OpenCV rounds the sampling position to 1/32 pixel; we do not, so values may differ by one level.)
 */
export function warpSimilarity(src: RgbPixels, toCrop: Similarity, size: number): Uint8Array {
  const out = new Uint8Array(size * size * 3);
  const inv = invertSimilarity(toCrop);
  const { data, width, height } = src;
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const sx = inv.a * x - inv.b * y + inv.tx;
      const sy = inv.b * x + inv.a * y + inv.ty;
      if (!(sx > -1 && sy > -1 && sx < width && sy < height)) continue;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const fx = sx - x0;
      const fy = sy - y0;
      const o = (y * size + x) * 3;
      // Offsets of the 4 neighbours, -1 where they fall outside the image.
      const inX0 = x0 >= 0, inX1 = x0 + 1 < width, inY0 = y0 >= 0, inY1 = y0 + 1 < height;
      const p00 = inX0 && inY0 ? (y0 * width + x0) * 3 : -1;
      const p10 = inX1 && inY0 ? (y0 * width + x0 + 1) * 3 : -1;
      const p01 = inX0 && inY1 ? ((y0 + 1) * width + x0) * 3 : -1;
      const p11 = inX1 && inY1 ? ((y0 + 1) * width + x0 + 1) * 3 : -1;
      const w00 = (1 - fx) * (1 - fy), w10 = fx * (1 - fy), w01 = (1 - fx) * fy, w11 = fx * fy;
      for (let c = 0; c < 3; c++) {
        const v = Math.round(
          (p00 < 0 ? 0 : data[p00 + c]! * w00) +
            (p10 < 0 ? 0 : data[p10 + c]! * w10) +
            (p01 < 0 ? 0 : data[p01 + c]! * w01) +
            (p11 < 0 ? 0 : data[p11 + c]! * w11),
        );
        out[o + c] = v > 255 ? 255 : v;
      }
    }
  }
  return out;
}

export interface AlignedFace {
  /** ALIGNED_SIZE² RGB pixels. */
  pixels: Uint8Array;
  transform: Similarity;
}

/** norm_crop: landmarks in `image` pixels -> the 112x112 ArcFace crop; null when the landmarks are degenerate. */
export function alignFace(image: RgbPixels, landmarks: ArrayLike<number>): AlignedFace | null {
  if (!(image.width > 0 && image.height > 0) || image.data.length < image.width * image.height * 3) return null;
  const transform = estimateSimilarity(landmarks, ARCFACE_TEMPLATE);
  if (!transform) return null;
  return { pixels: warpSimilarity(image, transform, ALIGNED_SIZE), transform };
}

/** Variance of the 4-neighbour Laplacian of the grey image (cv2.Laplacian, ksize 1, BORDER_REFLECT_101). */
export function laplacianVariance(rgb: Uint8Array, width: number, height: number): number {
  if (width < 1 || height < 1) return 0;
  const grey = new Float64Array(width * height);
  for (let i = 0; i < grey.length; i++) {
    // cv2's RGB2GRAY weights, rounded to 8 bits like the uint8 grey image it makes.
    grey[i] = Math.round(0.299 * rgb[3 * i]! + 0.587 * rgb[3 * i + 1]! + 0.114 * rgb[3 * i + 2]!);
  }
  const reflect = (i: number, n: number) => (n === 1 ? 0 : i < 0 ? -i : i >= n ? 2 * n - 2 - i : i);
  let sum = 0;
  let sumSq = 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const c = grey[y * width + x]!;
      const v =
        grey[y * width + reflect(x - 1, width)]! +
        grey[y * width + reflect(x + 1, width)]! +
        grey[reflect(y - 1, height) * width + x]! +
        grey[reflect(y + 1, height) * width + x]! -
        4 * c;
      sum += v;
      sumSq += v * v;
    }
  }
  const n = width * height;
  const mean = sum / n;
  return Math.max(0, sumSq / n - mean * mean);
}
