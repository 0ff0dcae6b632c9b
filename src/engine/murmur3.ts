// MurmurHash3 x64_128 (Austin Appleby's reference). The 64-bit lanes are carried as pairs of unsigned 32-bit
// halves: BigInt arithmetic would allocate on every operation and hashing a 48 KiB imohash sample is on the hot
// path of every scan. Results go through module-level registers for the same reason; they are `var` because
// module-level `let` costs a TDZ check on every access, measurably in the block loop.

const C1_HI = 0x87c37b91;
const C1_LO = 0x114253d5;
const C2_HI = 0x4cf5ad43;
const C2_LO = 0x2745937f;

var rHi = 0;
var rLo = 0;
// Finalised h1 and h2, read by the two digest forms.
var fHi1 = 0;
var fLo1 = 0;
var fHi2 = 0;
var fLo2 = 0;

/** (aHi:aLo * bHi:bLo) mod 2^64 into rHi:rLo. */
function mul64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  // The high word of the 32x32 low product needs 16-bit limbs to stay exact in doubles.
  const a0 = aLo & 0xffff;
  const a1 = aLo >>> 16;
  const b0 = bLo & 0xffff;
  const b1 = bLo >>> 16;
  const m1 = a1 * b0;
  const m2 = a0 * b1;
  const carry = (((a0 * b0) >>> 16) + (m1 & 0xffff) + (m2 & 0xffff)) >>> 16;
  rHi = (a1 * b1 + (m1 >>> 16) + (m2 >>> 16) + carry + Math.imul(aHi, bLo) + Math.imul(aLo, bHi)) >>> 0;
  rLo = Math.imul(aLo, bLo) >>> 0;
}

/** Rotate left by n in 1..31 into rHi:rLo. */
function rotl64(hi: number, lo: number, n: number): void {
  rHi = ((hi << n) | (lo >>> (32 - n))) >>> 0;
  rLo = ((lo << n) | (hi >>> (32 - n))) >>> 0;
}

function add64(aHi: number, aLo: number, bHi: number, bLo: number): void {
  const lo = aLo + bLo;
  rLo = lo >>> 0;
  rHi = (aHi + bHi + (lo > 0xffffffff ? 1 : 0)) >>> 0;
}

function fmix64(hi: number, lo: number): void {
  lo = (lo ^ (hi >>> 1)) >>> 0;
  mul64(hi, lo, 0xff51afd7, 0xed558ccd);
  hi = rHi;
  lo = (rLo ^ (hi >>> 1)) >>> 0;
  mul64(hi, lo, 0xc4ceb9fe, 0x1a85ec53);
  hi = rHi;
  rLo = (rLo ^ (hi >>> 1)) >>> 0;
  rHi = hi;
}

function readU32LE(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

/**
 * Incremental MurmurHash3 x64_128: `update` any number of times, then `digest`. Feeding the same bytes in any
 * split gives the same result as one call to `murmur3x64_128`.
 */
export class Murmur3x64_128 {
  /** h1 high, h1 low, h2 high, h2 low. */
  private readonly state = new Uint32Array(4);
  private readonly tail = new Uint8Array(16);
  private tailLength = 0;
  private length = 0;

  constructor(seed = 0) {
    this.state[1] = seed >>> 0;
    this.state[3] = seed >>> 0;
  }

  update(data: Uint8Array): this {
    this.length += data.length;
    let i = 0;
    if (this.tailLength > 0) {
      const take = Math.min(16 - this.tailLength, data.length);
      this.tail.set(data.subarray(0, take), this.tailLength);
      this.tailLength += take;
      i = take;
      if (this.tailLength < 16) return this;
      hashBlocks(this.tail, 0, 16, this.state);
      this.tailLength = 0;
    }
    const blocksEnd = i + Math.floor((data.length - i) / 16) * 16;
    hashBlocks(data, i, blocksEnd, this.state);
    if (blocksEnd < data.length) {
      this.tail.set(data.subarray(blocksEnd), 0);
      this.tailLength = data.length - blocksEnd;
    }
    return this;
  }

  /** The 128-bit result as Go's murmur3 `Sum128` gives it. Does not reset the state, so hashing may go on. */
  digest(): { h1: bigint; h2: bigint } {
    this.finalize();
    return { h1: (BigInt(fHi1) << 32n) | BigInt(fLo1), h2: (BigInt(fHi2) << 32n) | BigInt(fLo2) };
  }

  /** 16 bytes, h1 then h2, each big-endian: Go's murmur3 `Sum()`, the layout imohash builds on. */
  digestBytes(): Uint8Array {
    this.finalize();
    const out = new Uint8Array(16);
    const view = new DataView(out.buffer);
    view.setUint32(0, fHi1);
    view.setUint32(4, fLo1);
    view.setUint32(8, fHi2);
    view.setUint32(12, fLo2);
    return out;
  }

  /** Tail, length and fmix on copies of the running state, into fHi1:fLo1 and fHi2:fLo2. */
  private finalize(): void {
    let h1Hi = this.state[0]!;
    let h1Lo = this.state[1]!;
    let h2Hi = this.state[2]!;
    let h2Lo = this.state[3]!;
    const n = this.tailLength;
    if (n > 8) {
      const k = new Uint8Array(8);
      k.set(this.tail.subarray(8, n));
      mixK2(readU32LE(k, 4), readU32LE(k, 0));
      h2Hi = (h2Hi ^ rHi) >>> 0;
      h2Lo = (h2Lo ^ rLo) >>> 0;
    }
    if (n > 0) {
      const k = new Uint8Array(8);
      k.set(this.tail.subarray(0, Math.min(n, 8)));
      mixK1(readU32LE(k, 4), readU32LE(k, 0));
      h1Hi = (h1Hi ^ rHi) >>> 0;
      h1Lo = (h1Lo ^ rLo) >>> 0;
    }

    const lenLo = this.length >>> 0;
    const lenHi = Math.floor(this.length / 0x100000000) >>> 0;
    h1Hi = (h1Hi ^ lenHi) >>> 0;
    h1Lo = (h1Lo ^ lenLo) >>> 0;
    h2Hi = (h2Hi ^ lenHi) >>> 0;
    h2Lo = (h2Lo ^ lenLo) >>> 0;

    add64(h1Hi, h1Lo, h2Hi, h2Lo);
    h1Hi = rHi;
    h1Lo = rLo;
    add64(h2Hi, h2Lo, h1Hi, h1Lo);
    h2Hi = rHi;
    h2Lo = rLo;

    fmix64(h1Hi, h1Lo);
    h1Hi = rHi;
    h1Lo = rLo;
    fmix64(h2Hi, h2Lo);
    h2Hi = rHi;
    h2Lo = rLo;

    add64(h1Hi, h1Lo, h2Hi, h2Lo);
    h1Hi = rHi;
    h1Lo = rLo;
    add64(h2Hi, h2Lo, h1Hi, h1Lo);
    h2Hi = rHi;
    h2Lo = rLo;

    fHi1 = h1Hi;
    fLo1 = h1Lo;
    fHi2 = h2Hi;
    fLo2 = h2Lo;
  }
}

/** The block loop with every 64-bit step inlined on locals: it carries almost all of the hashing time. */
function hashBlocks(b: Uint8Array, from: number, to: number, st: Uint32Array): void {
  let h1h = st[0]!;
  let h1l = st[1]!;
  let h2h = st[2]!;
  let h2l = st[3]!;
  for (let i = from; i + 16 <= to; i += 16) {
    let kl = (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
    let kh = (b[i + 4]! | (b[i + 5]! << 8) | (b[i + 6]! << 16) | (b[i + 7]! << 24)) >>> 0;
    mul64(kh, kl, C1_HI, C1_LO);
    kh = ((rHi << 31) | (rLo >>> 1)) >>> 0;
    kl = ((rLo << 31) | (rHi >>> 1)) >>> 0;
    mul64(kh, kl, C2_HI, C2_LO);
    h1h = (h1h ^ rHi) >>> 0;
    h1l = (h1l ^ rLo) >>> 0;
    let th = ((h1h << 27) | (h1l >>> 5)) >>> 0;
    let tl = ((h1l << 27) | (h1h >>> 5)) >>> 0;
    let s = tl + h2l;
    tl = s >>> 0;
    th = (th + h2h + (s > 0xffffffff ? 1 : 0)) >>> 0;
    s = ((tl << 2) >>> 0) + tl + 0x52dce729;
    h1h = ((((th << 2) | (tl >>> 30)) >>> 0) + th + Math.floor(s / 0x100000000)) >>> 0;
    h1l = s >>> 0;

    kl = (b[i + 8]! | (b[i + 9]! << 8) | (b[i + 10]! << 16) | (b[i + 11]! << 24)) >>> 0;
    kh = (b[i + 12]! | (b[i + 13]! << 8) | (b[i + 14]! << 16) | (b[i + 15]! << 24)) >>> 0;
    mul64(kh, kl, C2_HI, C2_LO);
    // rotl 33 = swap halves, then rotl 1.
    kh = ((rLo << 1) | (rHi >>> 31)) >>> 0;
    kl = ((rHi << 1) | (rLo >>> 31)) >>> 0;
    mul64(kh, kl, C1_HI, C1_LO);
    h2h = (h2h ^ rHi) >>> 0;
    h2l = (h2l ^ rLo) >>> 0;
    th = ((h2h << 31) | (h2l >>> 1)) >>> 0;
    tl = ((h2l << 31) | (h2h >>> 1)) >>> 0;
    s = tl + h1l;
    tl = s >>> 0;
    th = (th + h1h + (s > 0xffffffff ? 1 : 0)) >>> 0;
    s = ((tl << 2) >>> 0) + tl + 0x38495ab5;
    h2h = ((((th << 2) | (tl >>> 30)) >>> 0) + th + Math.floor(s / 0x100000000)) >>> 0;
    h2l = s >>> 0;
  }
  st[0] = h1h;
  st[1] = h1l;
  st[2] = h2h;
  st[3] = h2l;
}

/** k1 * c1, rotl 31, * c2 into rHi:rLo. */
function mixK1(hi: number, lo: number): void {
  mul64(hi, lo, C1_HI, C1_LO);
  rotl64(rHi, rLo, 31);
  mul64(rHi, rLo, C2_HI, C2_LO);
}

/** k2 * c2, rotl 33, * c1 into rHi:rLo. Rotating by 33 is swapping the halves, then rotating by 1. */
function mixK2(hi: number, lo: number): void {
  mul64(hi, lo, C2_HI, C2_LO);
  rotl64(rLo, rHi, 1);
  mul64(rHi, rLo, C1_HI, C1_LO);
}

/** MurmurHash3_x64_128 of `data` as the two 64-bit halves, matching Go's murmur3 `Sum128(data)`. */
export function murmur3x64_128(data: Uint8Array, seed = 0): { h1: bigint; h2: bigint } {
  return new Murmur3x64_128(seed).update(data).digest();
}

/** MurmurHash3_x64_128 of `data` as 16 bytes, h1 then h2 big-endian (Go's murmur3 `Sum()`, used by imohash). */
export function murmur3Bytes(data: Uint8Array, seed = 0): Uint8Array {
  return new Murmur3x64_128(seed).update(data).digestBytes();
}
