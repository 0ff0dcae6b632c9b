// CLIP's reference preprocessing (torchvision Resize(size) -> CenterCrop(size) -> ToTensor -> Normalize on a PIL
// image), reimplemented so our vectors match the published models without Python at index time.
// The resample is a port of Pillow's Resample.c for 8-bit RGB: per-axis coefficients rounded to fixed point,
// horizontal pass first, 8-bit clamped intermediate, then the vertical pass. Only the pixels inside the centre crop
// are computed, which gives the same numbers as resizing everything and cropping afterwards.
import type { DecodedImage, PreprocessSpec } from "./types.ts";

// Pillow: PRECISION_BITS = 32 - 8 - 2, so a 255 * coefficient sum cannot overflow a signed 32-bit accumulator.
const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

interface Filter {
  support: number;
  weight: (x: number) => number;
}

const BICUBIC: Filter = {
  support: 2,
  weight(x) {
    // Pillow uses a = -0.5 (torch and OpenCV use -0.75); the reference models were trained on Pillow's.
    const a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  },
};

const BILINEAR: Filter = {
  support: 1,
  weight(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  },
};

/** Fixed-point taps for one axis: output i reads `count[i]` inputs starting at `first[i]`. */
interface AxisKernel {
  taps: number;
  first: Int32Array;
  count: Int32Array;
  coeffs: Int32Array;
}

// Pillow's precompute_coeffs + normalize_coeffs_8bpc, restricted to outputs [outStart, outStart + outCount).
function axisKernel(inSize: number, outSize: number, outStart: number, outCount: number, filter: Filter): AxisKernel {
  const scale = inSize / outSize;
  // Downscaling widens the kernel so every input pixel contributes (antialiasing); upscaling keeps it at 1.
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const taps = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outCount);
  const count = new Int32Array(outCount);
  const coeffs = new Int32Array(outCount * taps);
  const weights = new Float64Array(taps);
  const invFilterScale = 1 / filterScale;
  for (let i = 0; i < outCount; i++) {
    const center = (outStart + i + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let sum = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.weight((x + xmin - center + 0.5) * invFilterScale);
      weights[x] = w;
      sum += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = sum !== 0 ? weights[x]! / sum : weights[x]!;
      coeffs[i * taps + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    first[i] = xmin;
    count[i] = xmax;
  }
  return { taps, first, count, coeffs };
}

function clip8(acc: number): number {
  const v = acc >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/** Python's round(): halves go to the even neighbour. torchvision's CenterCrop uses it for the offsets. */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** torchvision Resize(size) on a PIL image: the short side becomes `size`, the long side is truncated. */
export function resizedSize(width: number, height: number, size: number): { width: number; height: number } {
  if (width <= height) return { width: size, height: Math.trunc((size * height) / width) };
  return { width: Math.trunc((size * width) / height), height: size };
}

export function centerCropOffset(resized: number, size: number): number {
  return roundHalfEven((resized - size) / 2);
}

// ToTensor divides by 255 and Normalize subtracts and divides, all in float32; a 256-entry table per channel gives
// the same float32 results as doing it per pixel.
function normalizeTable(mean: number, std: number): Float32Array {
  const table = new Float32Array(256);
  const m = Math.fround(mean);
  const s = Math.fround(std);
  for (let v = 0; v < 256; v++) table[v] = Math.fround(Math.fround(Math.fround(v / 255) - m) / s);
  return table;
}

const tableCache = new Map<string, Float32Array[]>();

function normalizeTables(spec: PreprocessSpec): Float32Array[] {
  const key = `${spec.mean.join(",")}/${spec.std.join(",")}`;
  let tables = tableCache.get(key);
  if (!tables) {
    tables = [0, 1, 2].map((c) => normalizeTable(spec.mean[c]!, spec.std[c]!));
    tableCache.set(key, tables);
  }
  return tables;
}

const kernelCache = new Map<string, AxisKernel>();

function cachedAxisKernel(inSize: number, outSize: number, outStart: number, outCount: number, filter: Filter): AxisKernel {
  const key = `${inSize}:${outSize}:${outStart}:${outCount}:${filter === BICUBIC ? "c" : "l"}`;
  let k = kernelCache.get(key);
  if (!k) {
    // Photo collections repeat a handful of camera resolutions; keep the cache from growing without bound anyway.
    if (kernelCache.size > 256) kernelCache.clear();
    k = axisKernel(inSize, outSize, outStart, outCount, filter);
    kernelCache.set(key, k);
  }
  return k;
}

/** Writes 3 * size * size floats (CHW, normalised) for `img` at `out[offset..]`. */
export function preprocessInto(img: DecodedImage, spec: PreprocessSpec, out: Float32Array, offset: number): void {
  const { width: inW, height: inH, data } = img;
  const size = spec.size;
  if (data.length < inW * inH * 3) throw new Error(`preprocess: ${inW}x${inH} RGB needs ${inW * inH * 3} bytes, got ${data.length}`);
  if (out.length < offset + 3 * size * size) throw new Error(`preprocess: output has no room for 3x${size}x${size} at ${offset}`);
  const filter = spec.interpolation === "bilinear" ? BILINEAR : BICUBIC;
  const resized = resizedSize(inW, inH, size);
  const left = centerCropOffset(resized.width, size);
  const top = centerCropOffset(resized.height, size);

  // Pillow skips an axis whose size does not change; an identity kernel would give the same bytes, only slower.
  const needH = resized.width !== inW;
  const needV = resized.height !== inH;
  const kh = needH ? cachedAxisKernel(inW, resized.width, left, size, filter) : null;
  const kv = needV ? cachedAxisKernel(inH, resized.height, top, size, filter) : null;

  // Source rows the vertical pass will read.
  const rowFirst = kv ? kv.first[0]! : top;
  const rowEnd = kv ? kv.first[size - 1]! + kv.count[size - 1]! : top + size;
  const rows = rowEnd - rowFirst;

  // Horizontal pass: rows x size RGB, 8-bit, as in Pillow's imTemp.
  const tmp = new Uint8Array(rows * size * 3);
  if (kh) {
    const { taps, first, count, coeffs } = kh;
    for (let r = 0; r < rows; r++) {
      const rowBase = (rowFirst + r) * inW * 3;
      let o = r * size * 3;
      for (let x = 0; x < size; x++) {
        const k0 = x * taps;
        const n = count[x]!;
        let p = rowBase + first[x]! * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let t = 0; t < n; t++, p += 3) {
          const c = coeffs[k0 + t]!;
          s0 += data[p]! * c;
          s1 += data[p + 1]! * c;
          s2 += data[p + 2]! * c;
        }
        tmp[o++] = clip8(s0);
        tmp[o++] = clip8(s1);
        tmp[o++] = clip8(s2);
      }
    }
  } else {
    for (let r = 0; r < rows; r++) {
      const src = ((rowFirst + r) * inW + left) * 3;
      tmp.set(data.subarray(src, src + size * 3), r * size * 3);
    }
  }

  // Vertical pass straight into the normalised planes.
  const [t0, t1, t2] = normalizeTables(spec) as [Float32Array, Float32Array, Float32Array];
  const plane = size * size;
  const o0 = offset;
  const o1 = offset + plane;
  const o2 = offset + 2 * plane;
  const stride = size * 3;
  for (let y = 0; y < size; y++) {
    const outRow = y * size;
    if (kv) {
      const { taps, first, count, coeffs } = kv;
      const k0 = y * taps;
      const n = count[y]!;
      const base = (first[y]! - rowFirst) * stride;
      for (let x = 0; x < size; x++) {
        let p = base + x * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let t = 0; t < n; t++, p += stride) {
          const c = coeffs[k0 + t]!;
          s0 += tmp[p]! * c;
          s1 += tmp[p + 1]! * c;
          s2 += tmp[p + 2]! * c;
        }
        out[o0 + outRow + x] = t0[clip8(s0)]!;
        out[o1 + outRow + x] = t1[clip8(s1)]!;
        out[o2 + outRow + x] = t2[clip8(s2)]!;
      }
    } else {
      let p = y * stride;
      for (let x = 0; x < size; x++, p += 3) {
        out[o0 + outRow + x] = t0[tmp[p]!]!;
        out[o1 + outRow + x] = t1[tmp[p + 1]!]!;
        out[o2 + outRow + x] = t2[tmp[p + 2]!]!;
      }
    }
  }
}

export function preprocess(img: DecodedImage, spec: PreprocessSpec): Float32Array {
  const out = new Float32Array(3 * spec.size * spec.size);
  preprocessInto(img, spec, out, 0);
  return out;
}
