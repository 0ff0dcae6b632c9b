// PCA by subspace iteration on the D×D covariance of a seeded row sample: work is O(s·D² + N·D·d), never N×N.
// The products run on the WASM SIMD dot kernel in float32 (covariance, iteration, projection).
// Deterministic: the same input and seed give the same projection (component signs fixed by largest loading).
import { mulberry32 } from "../seeded-random.ts";
import { DotProducts, Kernels } from "./wasm-kernels.ts";

export interface PcaOptions {
  /** Output dimensions; default 50. */
  dims?: number;
  /** Rows used to estimate the covariance; default 2048 (the top axes of a larger sample barely move). */
  sampleSize?: number;
  seed?: number;
  iterations?: number;
}

export interface Pca {
  dims: number;
  mean: Float64Array;
  /** dims × inputDims, row-major: one principal axis per row. */
  components: Float32Array;
  /** Variance along each component. */
  variances: Float64Array;
}

export function fitPca(data: Float32Array, n: number, inputDims: number, opts: PcaOptions = {}): Pca {
  const D = inputDims;
  const d = Math.min(opts.dims ?? 50, D);
  const rand = mulberry32(opts.seed ?? 0x1d6e5);
  const mean = new Float64Array(D);
  for (let i = 0; i < n; i++) for (let k = 0; k < D; k++) mean[k]! += data[i * D + k]!;
  for (let k = 0; k < D; k++) mean[k]! /= Math.max(1, n);

  const s = Math.min(n, opts.sampleSize ?? 2048);
  const sample = sampleRows(n, s, rand);
  // Column-major centred sample so covariance entries are dot products of contiguous columns.
  const cols = new Float32Array(D * s);
  for (let r = 0; r < s; r++) {
    const o = sample[r]! * D;
    for (let k = 0; k < D; k++) cols[k * s + r] = data[o + k]! - mean[k]!;
  }
  const kernels = new Kernels();
  const cov = covariance(kernels, cols, D, s);

  const p = Math.min(D, d + 10);
  let q = new Float64Array(D * p); // column j at q[j*D ..]
  for (let i = 0; i < q.length; i++) q[i] = gaussian(rand);
  orthonormalize(q, D, p);
  const z = new Float64Array(D * p);
  for (let it = 0; it < (opts.iterations ?? 8); it++) {
    multiplySymmetric(kernels, cov, D, q, p, z);
    [q] = [z.slice()];
    orthonormalize(q, D, p);
  }
  multiplySymmetric(kernels, cov, D, q, p, z);
  const t = new Float64Array(p * p);
  for (let a = 0; a < p; a++) for (let b = 0; b < p; b++) {
    let sum = 0;
    for (let k = 0; k < D; k++) sum += q[a * D + k]! * z[b * D + k]!;
    t[a * p + b] = sum;
  }
  const { values, vectors } = jacobiEigen(t, p);
  const order = Array.from({ length: p }, (_, i) => i).sort((a, b) => values[b]! - values[a]!);
  const components = new Float32Array(d * D);
  const variances = new Float64Array(d);
  for (let c = 0; c < d; c++) {
    const e = order[c]!;
    variances[c] = values[e]!;
    let biggest = 0;
    for (let k = 0; k < D; k++) {
      let sum = 0;
      for (let a = 0; a < p; a++) sum += q[a * D + k]! * vectors[a * p + e]!;
      components[c * D + k] = sum;
      if (Math.abs(sum) > Math.abs(biggest)) biggest = sum;
    }
    if (biggest < 0) for (let k = 0; k < D; k++) components[c * D + k] = -components[c * D + k]!;
  }
  return { dims: d, mean, components, variances };
}

/** Rows projected per kernel pass; bounds the kernel memory at CHUNK × inputDims floats. */
const CHUNK = 4096;

export function projectPca(pca: Pca, data: Float32Array, n: number, inputDims: number): Float32Array {
  const D = inputDims, d = pca.dims;
  const out = new Float32Array(n * d);
  const offset = new Float64Array(d);
  for (let c = 0; c < d; c++) for (let k = 0; k < D; k++) offset[c]! += pca.mean[k]! * pca.components[c * D + k]!;
  const kernels = new Kernels();
  const chunk = Math.min(n, CHUNK);
  // Components are the kernel's four "queries" at a time; data rows stream through in chunks.
  const dots = new DotProducts(kernels, pca.components, d, D, chunk);
  for (let from = 0; from < n; from += chunk) {
    const rows = Math.min(chunk, n - from);
    dots.loadRows(data.subarray(from * D, (from + rows) * D), rows);
    dots.each(rows, (c, j, v) => { out[(from + j) * d + c] = v - offset[c]!; });
  }
  return out;
}

/** Fit on a sample and project all rows to `dims` dimensions. */
export function pca(data: Float32Array, n: number, inputDims: number, opts: PcaOptions = {}): Float32Array {
  return projectPca(fitPca(data, n, inputDims, opts), data, n, inputDims);
}

/** cov = colsᵀ·cols / (s − 1), lower triangle by the kernel, mirrored. */
function covariance(kernels: Kernels, cols: Float32Array, D: number, s: number): Float32Array {
  const cov = new Float32Array(D * D);
  const scale = 1 / Math.max(1, s - 1);
  const dots = new DotProducts(kernels, cols, D, s, D);
  dots.loadRows(cols, D);
  dots.each(D, (i, j, v) => { if (j <= i) cov[i * D + j] = cov[j * D + i] = v * scale; }, true);
  return cov;
}

function multiplySymmetric(kernels: Kernels, cov: Float32Array, D: number, q: Float64Array, p: number, out: Float64Array): void {
  const dots = new DotProducts(kernels, Float32Array.from(q), p, D, D);
  dots.loadRows(cov, D);
  dots.each(D, (c, i, v) => { out[c * D + i] = v; });
}

function orthonormalize(q: Float64Array, D: number, p: number): void {
  for (let c = 0; c < p; c++) {
    const qc = c * D;
    for (let pass = 0; pass < 2; pass++) {
      for (let b = 0; b < c; b++) {
        const qb = b * D;
        let dot = 0;
        for (let k = 0; k < D; k++) dot += q[qc + k]! * q[qb + k]!;
        for (let k = 0; k < D; k++) q[qc + k]! -= dot * q[qb + k]!;
      }
    }
    let norm = 0;
    for (let k = 0; k < D; k++) norm += q[qc + k]! ** 2;
    norm = Math.sqrt(norm);
    // A collapsed direction (rank-deficient data) is replaced by a unit axis; it gets eigenvalue ~0 anyway.
    if (norm < 1e-12) { q.fill(0, qc, qc + D); q[qc + (c % D)] = 1; continue; }
    for (let k = 0; k < D; k++) q[qc + k]! /= norm;
  }
}

/** Cyclic Jacobi eigen-decomposition of a small symmetric p×p matrix; eigenvectors are the columns. */
function jacobiEigen(a: Float64Array, p: number): { values: Float64Array; vectors: Float64Array } {
  const m = a.slice();
  const v = new Float64Array(p * p);
  for (let i = 0; i < p; i++) v[i * p + i] = 1;
  for (let sweep = 0; sweep < 50; sweep++) {
    let off = 0;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) off += m[i * p + j]! ** 2;
    if (off < 1e-22) break;
    for (let i = 0; i < p; i++) for (let j = i + 1; j < p; j++) {
      const aij = m[i * p + j]!;
      if (Math.abs(aij) < 1e-300) continue;
      const theta = (m[j * p + j]! - m[i * p + i]!) / (2 * aij);
      const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
      const c = 1 / Math.sqrt(t * t + 1), s = t * c;
      for (let k = 0; k < p; k++) {
        const mki = m[k * p + i]!, mkj = m[k * p + j]!;
        m[k * p + i] = c * mki - s * mkj;
        m[k * p + j] = s * mki + c * mkj;
      }
      for (let k = 0; k < p; k++) {
        const mik = m[i * p + k]!, mjk = m[j * p + k]!;
        m[i * p + k] = c * mik - s * mjk;
        m[j * p + k] = s * mik + c * mjk;
      }
      for (let k = 0; k < p; k++) {
        const vki = v[k * p + i]!, vkj = v[k * p + j]!;
        v[k * p + i] = c * vki - s * vkj;
        v[k * p + j] = s * vki + c * vkj;
      }
    }
  }
  const values = new Float64Array(p);
  for (let i = 0; i < p; i++) values[i] = m[i * p + i]!;
  return { values, vectors: v };
}

function sampleRows(n: number, s: number, rand: () => number): Int32Array {
  const idx = new Int32Array(n);
  for (let i = 0; i < n; i++) idx[i] = i;
  for (let i = 0; i < s; i++) {
    const j = i + Math.floor(rand() * (n - i));
    const t = idx[i]!; idx[i] = idx[j]!; idx[j] = t;
  }
  return idx.slice(0, s).sort();
}



export function gaussian(rand: () => number): number {
  const u = rand() || 1e-12, v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}
