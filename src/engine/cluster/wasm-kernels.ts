// The clustering hot loops as WebAssembly SIMD (f32x4), emitted here as bytes so nothing is built or shipped
// separately: it runs in Bun, in the compiled binary and in node alike. Scalar JS managed ~40 M distance pairs/s
// at 50 dims; these kernels are several times faster and keep every loop synchronous.
//
// All pointers are byte offsets into the module's own memory; rows are float32, `strideBytes` a multiple of 16
// (rows padded with zeros to a multiple of 4 floats), so the dims loop has no tail.

const SIMD = 0xfd;
const op = {
  loop: 0x03, if: 0x04, end: 0x0b, brIf: 0x0d, void: 0x40,
  get: 0x20, set: 0x21, tee: 0x22,
  i32Load: 0x28, f32Load: 0x2a, i32Store: 0x36, i32Const: 0x41,
  i32Eqz: 0x45, i32LtU: 0x49, i32Add: 0x6a, i32Mul: 0x6c, i32Shl: 0x74,
} as const;
const I32 = 0x7f, V128 = 0x7b;

function uleb(v: number): number[] {
  const out: number[] = [];
  do {
    let b = v & 0x7f;
    v >>>= 7;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return out;
}

function sleb(v: number): number[] {
  const out: number[] = [];
  for (;;) {
    const b = v & 0x7f;
    v >>= 7;
    if ((v === 0 && !(b & 0x40)) || (v === -1 && b & 0x40)) { out.push(b); return out; }
    out.push(b | 0x80);
  }
}

/** A function body under construction: a tiny assembler with named locals. */
class Body {
  readonly code: number[] = [];
  private readonly locals: number[] = [];
  private readonly names = new Map<string, number>();
  constructor(params: string[]) {
    params.forEach((p, i) => this.names.set(p, i));
  }
  local(name: string, type: number): void {
    this.names.set(name, this.names.size);
    this.locals.push(type);
  }
  private idx(name: string): number {
    const i = this.names.get(name);
    if (i === undefined) throw new Error(`wasm: unknown local ${name}`);
    return i;
  }
  get(...names: string[]): this { for (const n of names) this.code.push(op.get, ...uleb(this.idx(n))); return this; }
  set(name: string): this { this.code.push(op.set, ...uleb(this.idx(name))); return this; }
  tee(name: string): this { this.code.push(op.tee, ...uleb(this.idx(name))); return this; }
  i32(v: number): this { this.code.push(op.i32Const, ...sleb(v)); return this; }
  raw(...bytes: number[]): this { this.code.push(...bytes); return this; }
  simd(code: number, ...imm: number[]): this { this.code.push(SIMD, ...uleb(code), ...imm); return this; }
  /** v128.load with the address on the stack plus a constant offset. */
  load(offset = 0): this { return this.simd(0x00, 2, ...uleb(offset)); }
  store(offset = 0): this { return this.simd(0x0b, 2, ...uleb(offset)); }
  zero(): this { return this.simd(0x0c, ...new Array(16).fill(0)); }
  f32x4(c: number): this { return this.simd(c); }
  shuffle(lanes: number[]): this {
    return this.simd(0x0d, ...lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]));
  }
  /** Horizontal sums of four f32x4 locals → one f32x4 (Σa, Σb, Σc, Σd) on the stack; uses locals t0, t1. */
  hsum4(a: string, b: string, c: string, d: string): this {
    this.get(a, b).shuffle([0, 4, 2, 6]).get(a, b).shuffle([1, 5, 3, 7]).f32x4(ADD).set("t0");
    this.get(c, d).shuffle([0, 4, 2, 6]).get(c, d).shuffle([1, 5, 3, 7]).f32x4(ADD).set("t1");
    return this.get("t0", "t1").shuffle([0, 1, 4, 5]).get("t0", "t1").shuffle([2, 3, 6, 7]).f32x4(ADD);
  }
  bytes(): number[] {
    const groups: number[] = [];
    let count = 0;
    for (let i = 0; i < this.locals.length; ) {
      let j = i;
      while (j < this.locals.length && this.locals[j] === this.locals[i]) j++;
      groups.push(...uleb(j - i), this.locals[i]!);
      count++;
      i = j;
    }
    const body = [...uleb(count), ...groups, ...this.code, op.end];
    return [...uleb(body.length), ...body];
  }
}

const ADD = 0xe4, SUB = 0xe5, MUL = 0xe6, SQRT = 0xe3, PMAX = 0xeb, LT = 0x43, BITSELECT = 0x52, BITMASK = 0xa4;
const F32_SPLAT = 0x13, I32_SPLAT = 0x11, F_EQ = 0x41, I_LT_S = 0x39, AND = 0x4e, OR = 0x50;

/**
 * distances4x2(q, rows, count, strideBytes, norms, queryNorms, thresholds, out) → records.
 * Squared distances |q_r|² + |x_j|² − 2 q_r·x_j from four query rows (pointers at q, q+4, q+8, q+12) to `count`
 * rows (count even). For each row j where some query's distance is below its threshold, writes a 24-byte record
 * {j: i32, mask: i32 (bit r = query r passed), distances: f32x4} to out and counts it.
 */
function distances4x2(): Body {
  const f = new Body(["q", "rows", "count", "stride", "norms", "qn", "thr", "out"]);
  for (const n of ["q0", "q1", "q2", "q3", "j", "k", "rec", "mask"]) f.local(n, I32);
  for (const n of ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "v0", "v1", "x", "t0", "t1", "qnv", "thv", "d"]) f.local(n, V128);
  f.get("q").raw(op.i32Load, 2, 0).set("q0").get("q").raw(op.i32Load, 2, 4).set("q1");
  f.get("q").raw(op.i32Load, 2, 8).set("q2").get("q").raw(op.i32Load, 2, 12).set("q3");
  f.get("qn").load().set("qnv").get("thr").load().set("thv");
  f.get("count").raw(op.i32Eqz, op.if, op.void).i32(0).raw(0x0f, op.end); // return 0
  f.raw(op.loop, op.void);
  for (const n of ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]) f.zero().set(n);
  f.i32(0).set("k");
  f.raw(op.loop, op.void);
  f.get("rows", "k").raw(op.i32Add).load().set("v0");
  f.get("rows", "stride").raw(op.i32Add).get("k").raw(op.i32Add).load().set("v1");
  for (let r = 0; r < 4; r++) {
    f.get(`q${r}`, "k").raw(op.i32Add).load().tee("x").get("v0").f32x4(MUL).get(`a${r}`).f32x4(ADD).set(`a${r}`);
    f.get("x", "v1").f32x4(MUL).get(`b${r}`).f32x4(ADD).set(`b${r}`);
  }
  f.get("k").i32(16).raw(op.i32Add).tee("k").get("stride").raw(op.i32LtU, op.brIf, 0, op.end);
  for (const [side, acc] of [[0, "a"], [1, "b"]] as const) {
    // d = qn + |x_j|² − 2·dot, then one compare against all four thresholds
    f.get("qnv").get("norms", "j").i32(2).raw(op.i32Shl, op.i32Add).raw(op.f32Load, 2, side * 4).simd(F32_SPLAT).f32x4(ADD);
    f.hsum4(`${acc}0`, `${acc}1`, `${acc}2`, `${acc}3`).tee("d").get("d").f32x4(ADD).f32x4(SUB).tee("d");
    f.get("thv").f32x4(LT).simd(BITMASK, 0x01).tee("mask");
    f.raw(op.if, op.void);
    f.get("out", "rec").i32(24).raw(op.i32Mul, op.i32Add).tee("k").get("j").i32(side).raw(op.i32Add).raw(op.i32Store, 2, 0);
    f.get("k", "mask").raw(op.i32Store, 2, 4).get("k", "d").store(8);
    f.get("rec").i32(1).raw(op.i32Add).set("rec");
    f.raw(op.end);
  }
  f.get("rows", "stride").i32(1).raw(op.i32Shl, op.i32Add).set("rows");
  f.get("j").i32(2).raw(op.i32Add).tee("j").get("count").raw(op.i32LtU, op.brIf, 0, op.end);
  f.get("rec");
  return f;
}

/** dots4(q, rows, count, strideBytes, out): out[j] = (q_0·x_j, q_1·x_j, q_2·x_j, q_3·x_j) as f32x4, j < count. */
function dots4(): Body {
  const f = new Body(["q", "rows", "count", "stride", "out"]);
  for (const n of ["q0", "q1", "q2", "q3", "j", "k"]) f.local(n, I32);
  for (const n of ["a0", "a1", "a2", "a3", "v", "t0", "t1"]) f.local(n, V128);
  f.get("q").raw(op.i32Load, 2, 0).set("q0").get("q").raw(op.i32Load, 2, 4).set("q1");
  f.get("q").raw(op.i32Load, 2, 8).set("q2").get("q").raw(op.i32Load, 2, 12).set("q3");
  f.get("count").raw(op.i32Eqz, op.if, op.void).raw(0x0f, op.end);
  f.raw(op.loop, op.void);
  for (const n of ["a0", "a1", "a2", "a3"]) f.zero().set(n);
  f.i32(0).set("k");
  f.raw(op.loop, op.void);
  f.get("rows", "k").raw(op.i32Add).load().set("v");
  for (let r = 0; r < 4; r++) f.get(`q${r}`, "k").raw(op.i32Add).load().get("v").f32x4(MUL).get(`a${r}`).f32x4(ADD).set(`a${r}`);
  f.get("k").i32(16).raw(op.i32Add).tee("k").get("stride").raw(op.i32LtU, op.brIf, 0, op.end);
  f.get("out", "j").i32(4).raw(op.i32Shl, op.i32Add).hsum4("a0", "a1", "a2", "a3").store();
  f.get("rows", "stride").raw(op.i32Add).set("rows");
  f.get("j").i32(1).raw(op.i32Add).tee("j").get("count").raw(op.i32LtU, op.brIf, 0, op.end);
  return f;
}

/**
 * primStep(q, rows, count, strideBytes, norms, core, best, from, ids, consts, minOut): one step of Prim's algorithm
 * over `count` rows (a multiple of 4). consts holds f32x4 splats (|q|², core(q)) and an i32x4 splat of q's id. For
 * every row: mrd = max(√(|q|²+|x|²−2q·x), core(x), core(q)); if mrd < best, best = mrd and from = q's id. Writes
 * the per-lane minimum of best and the id holding it (f32x4, i32x4) to minOut; equal values go to the smaller id,
 * the tie-break R's dbscan uses.
 */
function primStep(): Body {
  const f = new Body(["q", "rows", "count", "stride", "norms", "core", "best", "from", "ids", "consts", "minOut"]);
  for (const n of ["j", "k", "r1", "r2", "r3", "o"]) f.local(n, I32);
  for (const n of ["a0", "a1", "a2", "a3", "x", "t0", "t1", "m", "b", "lt", "qnv", "qcv", "qid", "minv", "mini", "idv"]) f.local(n, V128);
  f.get("consts").load(0).set("qnv").get("consts").load(16).set("qcv").get("consts").load(32).set("qid");
  f.simd(0x0c, ...[0, 1, 2, 3].flatMap(() => [0, 0, 0x80, 0x7f])).set("minv"); // f32 +∞ in every lane
  f.i32(0x7fffffff).simd(I32_SPLAT).set("mini");
  f.get("count").raw(op.i32Eqz, op.if, op.void).get("minOut", "minv").store(0).get("minOut", "mini").store(16).raw(0x0f, op.end);
  f.raw(op.loop, op.void);
  for (const n of ["a0", "a1", "a2", "a3"]) f.zero().set(n);
  f.get("rows", "stride").raw(op.i32Add).tee("r1").get("stride").raw(op.i32Add).tee("r2").get("stride").raw(op.i32Add).set("r3");
  f.i32(0).set("k");
  f.raw(op.loop, op.void);
  f.get("q", "k").raw(op.i32Add).load().set("x");
  f.get("rows", "k").raw(op.i32Add).load().get("x").f32x4(MUL).get("a0").f32x4(ADD).set("a0");
  for (let r = 1; r < 4; r++) f.get(`r${r}`, "k").raw(op.i32Add).load().get("x").f32x4(MUL).get(`a${r}`).f32x4(ADD).set(`a${r}`);
  f.get("k").i32(16).raw(op.i32Add).tee("k").get("stride").raw(op.i32LtU, op.brIf, 0, op.end);
  f.get("j").i32(2).raw(op.i32Shl).set("o");
  f.hsum4("a0", "a1", "a2", "a3").tee("m").get("m").f32x4(ADD).set("m");
  f.get("qnv").get("norms", "o").raw(op.i32Add).load().f32x4(ADD).get("m").f32x4(SUB);
  f.zero().f32x4(PMAX).f32x4(SQRT);
  f.get("core", "o").raw(op.i32Add).load().f32x4(PMAX).get("qcv").f32x4(PMAX).set("m");
  f.get("best", "o").raw(op.i32Add).load().set("b");
  f.get("m", "b").f32x4(LT).set("lt");
  f.get("m", "b", "lt").simd(BITSELECT).set("b");
  f.get("best", "o").raw(op.i32Add).get("b").store();
  f.get("from", "o").raw(op.i32Add).get("qid").get("from", "o").raw(op.i32Add).load().get("lt").simd(BITSELECT).store();
  // lt = b < minv || (b == minv && id < mini)
  f.get("ids", "o").raw(op.i32Add).load().set("idv");
  f.get("b", "minv").f32x4(LT).get("b", "minv").f32x4(F_EQ).get("idv", "mini").simd(I_LT_S).simd(AND).simd(OR).set("lt");
  f.get("b", "minv", "lt").simd(BITSELECT).set("minv");
  f.get("idv", "mini", "lt").simd(BITSELECT).set("mini");
  f.get("r3", "stride").raw(op.i32Add).set("rows");
  f.get("j").i32(4).raw(op.i32Add).tee("j").get("count").raw(op.i32LtU, op.brIf, 0, op.end);
  f.get("minOut", "minv").store(0).get("minOut", "mini").store(16);
  return f;
}

function section(id: number, payload: number[]): number[] {
  return [id, ...uleb(payload.length), ...payload];
}

function moduleBytes(): Uint8Array<ArrayBuffer> {
  const fns: [string, Body, number][] = [
    ["distances4x2", distances4x2(), 8],
    ["dots4", dots4(), 5],
    ["primStep", primStep(), 11],
  ];
  const types = fns.flatMap(([name, , params]) => [0x60, ...uleb(params), ...new Array(params).fill(I32), ...(name === "distances4x2" ? [1, I32] : [0])]);
  const str = (s: string) => [...uleb(s.length), ...new TextEncoder().encode(s)];
  const exports = [...uleb(fns.length + 1), ...fns.flatMap(([name], i) => [...str(name), 0x00, ...uleb(i)]), ...str("memory"), 0x02, 0];
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [...uleb(fns.length), ...types]),
    ...section(3, [...uleb(fns.length), ...fns.map((_, i) => i)]),
    ...section(5, [1, 0x00, 1]), // one memory, min 1 page, grown on demand
    ...section(7, exports),
    ...section(10, [...uleb(fns.length), ...fns.flatMap(([, body]) => body.bytes())]),
  ]);
}

interface Exports {
  memory: WebAssembly.Memory;
  distances4x2(q: number, rows: number, count: number, stride: number, norms: number, qn: number, thr: number, out: number): number;
  dots4(q: number, rows: number, count: number, stride: number, out: number): void;
  primStep(q: number, rows: number, count: number, stride: number, norms: number, core: number, best: number,
    from: number, ids: number, consts: number, minOut: number): void;
}

let compiled: WebAssembly.Module | undefined;

/**
 * One kernel instance with its own linear memory, laid out by the caller with alloc() (a bump allocator: the
 * clustering stages allocate what they need up front and drop the whole instance when done).
 */
export class Kernels {
  readonly fn: Exports;
  private top = 64;

  constructor() {
    compiled ??= new WebAssembly.Module(moduleBytes());
    this.fn = new WebAssembly.Instance(compiled).exports as unknown as Exports;
  }

  /** Reserves `bytes` (16-byte aligned) and returns the byte offset. Views taken earlier stay valid only until the next alloc. */
  alloc(bytes: number): number {
    const at = this.top;
    this.top = at + Math.ceil(bytes / 16) * 16;
    const have = this.fn.memory.buffer.byteLength;
    if (this.top > have) this.fn.memory.grow(Math.ceil((this.top - have) / 65536));
    return at;
  }

  /** The allocation mark; restore(mark) frees everything allocated after it. */
  mark(): number { return this.top; }
  restore(mark: number): void { this.top = mark; }

  f32(at: number, length: number): Float32Array { return new Float32Array(this.fn.memory.buffer, at, length); }

  private viewOf: ArrayBuffer | undefined;
  private f32View = new Float32Array(0);
  private i32View = new Int32Array(0);
  /** Whole-memory views (index = byte offset / 4), rebuilt only after the memory grew. */
  get F32(): Float32Array { this.refresh(); return this.f32View; }
  get I32(): Int32Array { this.refresh(); return this.i32View; }
  private refresh(): void {
    const buffer = this.fn.memory.buffer;
    if (buffer === this.viewOf) return;
    this.viewOf = buffer;
    this.f32View = new Float32Array(buffer);
    this.i32View = new Int32Array(buffer);
  }
}

/** Floats per row once padded for the kernels. */
export const paddedDims = (dims: number): number => Math.ceil(dims / 4) * 4;

/** Copies n rows into kernel memory with a padded stride (plus `extraRows` zero rows); returns the byte offset. */
export function copyRows(kernels: Kernels, data: Float32Array, n: number, dims: number, extraRows = 0): number {
  const p = paddedDims(dims);
  const at = kernels.alloc((n + extraRows) * p * 4);
  const view = kernels.f32(at, (n + extraRows) * p);
  if (p === dims) view.set(data.subarray(0, n * dims));
  else for (let i = 0; i < n; i++) view.set(data.subarray(i * dims, (i + 1) * dims), i * p);
  return at;
}

/**
 * Dot products of a fixed set of "query" vectors (m × len) with batches of rows (≤ capacity × len), four queries
 * per kernel pass. Both sides sit in one kernel memory, zero-padded to a multiple of 4 floats.
 */
export class DotProducts {
  private readonly len: number;
  private readonly queries: number;
  private readonly rows: number;
  private readonly ptrs: number;
  private readonly out: number;

  constructor(private readonly kernels: Kernels, queries: Float32Array, private readonly m: number, len: number, capacity: number) {
    this.len = len;
    const p = paddedDims(len);
    this.queries = copyRows(kernels, queries, m, len, 3);
    this.rows = kernels.alloc(capacity * p * 4);
    this.ptrs = kernels.alloc(16);
    this.out = kernels.alloc(capacity * 16);
  }

  loadRows(rows: Float32Array, count: number): void {
    const p = paddedDims(this.len), F = this.kernels.F32, base = this.rows >> 2;
    if (p === this.len) F.set(rows.subarray(0, count * p), base);
    else for (let j = 0; j < count; j++) F.set(rows.subarray(j * this.len, (j + 1) * this.len), base + j * p);
  }

  /** Calls visit(query, row, dot) for every query and loaded row; lowerTriangle stops each query block at its own index. */
  each(count: number, visit: (query: number, row: number, dot: number) => void, lowerTriangle = false): void {
    const K = this.kernels, stride = paddedDims(this.len) * 4;
    for (let q = 0; q < this.m; q += 4) {
      const I = K.I32;
      for (let r = 0; r < 4; r++) I[(this.ptrs >> 2) + r] = this.queries + (q + r) * stride;
      const rows = lowerTriangle ? Math.min(count, q + 4) : count;
      K.fn.dots4(this.ptrs, this.rows, rows, stride, this.out);
      const F = K.F32, o = this.out >> 2, lanes = Math.min(4, this.m - q);
      for (let j = 0; j < rows; j++) for (let r = 0; r < lanes; r++) visit(q + r, j, F[o + j * 4 + r]!);
    }
  }
}
