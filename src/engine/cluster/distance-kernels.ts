// Hot loops for squared Euclidean distances over row-major Float32 matrices. Distances come from
// |a|² + |b|² − 2·a·b with precomputed norms, so each pair costs one dot product; dot products are
// register-blocked (several rows share every load) because that is what makes JSC's JIT fast here.

export function squaredNorms(data: Float32Array, n: number, dims: number): Float64Array {
  const norms = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let s = 0;
    const o = i * dims;
    for (let k = 0; k < dims; k++) s += data[o + k]! * data[o + k]!;
    norms[i] = s;
  }
  return norms;
}

/**
 * Squared distances from four query rows (q, q+1, q+2, q+3) to rows [from, to), written to
 * out[r * stride + (j - from)] for query r. Query rows past n are read as row q (caller ignores them).
 */
export function squaredDistances4(
  data: Float32Array, norms: Float64Array, n: number, dims: number,
  q: number, from: number, to: number, out: Float64Array, stride: number,
): void {
  const q0 = q * dims;
  const q1 = (q + 1 < n ? q + 1 : q) * dims;
  const q2 = (q + 2 < n ? q + 2 : q) * dims;
  const q3 = (q + 3 < n ? q + 3 : q) * dims;
  const n0 = norms[q0 / dims]!, n1 = norms[q1 / dims]!, n2 = norms[q2 / dims]!, n3 = norms[q3 / dims]!;
  let j = from;
  for (; j + 1 < to; j += 2) {
    const b = j * dims, c = b + dims;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
    for (let k = 0; k < dims; k++) {
      const v = data[b + k]!, w = data[c + k]!;
      const a0 = data[q0 + k]!, a1 = data[q1 + k]!, a2 = data[q2 + k]!, a3 = data[q3 + k]!;
      s0 += a0 * v; s1 += a1 * v; s2 += a2 * v; s3 += a3 * v;
      t0 += a0 * w; t1 += a1 * w; t2 += a2 * w; t3 += a3 * w;
    }
    const nb = norms[j]!, nc = norms[j + 1]!, o = j - from;
    out[o] = n0 + nb - 2 * s0; out[stride + o] = n1 + nb - 2 * s1;
    out[2 * stride + o] = n2 + nb - 2 * s2; out[3 * stride + o] = n3 + nb - 2 * s3;
    out[o + 1] = n0 + nc - 2 * t0; out[stride + o + 1] = n1 + nc - 2 * t1;
    out[2 * stride + o + 1] = n2 + nc - 2 * t2; out[3 * stride + o + 1] = n3 + nc - 2 * t3;
  }
  if (j < to) {
    const b = j * dims;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let k = 0; k < dims; k++) {
      const v = data[b + k]!;
      s0 += data[q0 + k]! * v; s1 += data[q1 + k]! * v; s2 += data[q2 + k]! * v; s3 += data[q3 + k]! * v;
    }
    const nb = norms[j]!, o = j - from;
    out[o] = n0 + nb - 2 * s0; out[stride + o] = n1 + nb - 2 * s1;
    out[2 * stride + o] = n2 + nb - 2 * s2; out[3 * stride + o] = n3 + nb - 2 * s3;
  }
}

/** Squared distances from row q to every row in [0, n), into out[0..n). Four data rows share each query load. */
export function squaredDistancesFromRow(
  data: Float32Array, norms: Float64Array, n: number, dims: number, q: number, out: Float64Array,
): void {
  const qo = q * dims, nq = norms[q]!;
  let j = 0;
  for (; j + 3 < n; j += 4) {
    const b0 = j * dims, b1 = b0 + dims, b2 = b1 + dims, b3 = b2 + dims;
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    for (let k = 0; k < dims; k++) {
      const a = data[qo + k]!;
      s0 += a * data[b0 + k]!; s1 += a * data[b1 + k]!; s2 += a * data[b2 + k]!; s3 += a * data[b3 + k]!;
    }
    out[j] = nq + norms[j]! - 2 * s0; out[j + 1] = nq + norms[j + 1]! - 2 * s1;
    out[j + 2] = nq + norms[j + 2]! - 2 * s2; out[j + 3] = nq + norms[j + 3]! - 2 * s3;
  }
  for (; j < n; j++) {
    const b = j * dims;
    let s = 0;
    for (let k = 0; k < dims; k++) s += data[qo + k]! * data[b + k]!;
    out[j] = nq + norms[j]! - 2 * s;
  }
}
