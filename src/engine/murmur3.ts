// MurmurHash3 x64_128 (Austin Appleby's reference). The 64-bit lanes are carried as pairs of unsigned 32-bit
// halves: BigInt arithmetic would allocate on every operation and hashing a 48 KiB imohash sample is on the hot
// path of every scan. Results go through module-level registers for the same reason.

const C1_HI = 0x87c37b91;
const C1_LO = 0x114253d5;
const C2_HI = 0x4cf5ad43;
const C2_LO = 0x2745937f;

let rHi = 0;
let rLo = 0;

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

function writeU64LE(out: Uint8Array, at: number, hi: number, lo: number): void {
  for (let i = 0; i < 4; i++) {
    out[at + i] = (lo >>> (8 * i)) & 0xff;
    out[at + 4 + i] = (hi >>> (8 * i)) & 0xff;
  }
}

/**
 * Incremental MurmurHash3 x64_128: `update` any number of times, then `digest`. Feeding the same bytes in any
 * split gives the same result as one call to `murmur3x64_128`.
 */
export class Murmur3x64_128 {
  private h1Hi: number;
  private h1Lo: number;
  private h2Hi: number;
  private h2Lo: number;
  private readonly tail = new Uint8Array(16);
  private tailLength = 0;
  private length = 0;

  constructor(seed = 0) {
    this.h1Hi = 0;
    this.h2Hi = 0;
    this.h1Lo = seed >>> 0;
    this.h2Lo = seed >>> 0;
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
      this.block(this.tail, 0);
      this.tailLength = 0;
    }
    for (; i + 16 <= data.length; i += 16) this.block(data, i);
    if (i < data.length) {
      this.tail.set(data.subarray(i), 0);
      this.tailLength = data.length - i;
    }
    return this;
  }

  /** 16 bytes laid out like the reference C++ output: h1 then h2, each little-endian. Does not reset the state. */
  digest(): Uint8Array {
    let h1Hi = this.h1Hi;
    let h1Lo = this.h1Lo;
    let h2Hi = this.h2Hi;
    let h2Lo = this.h2Lo;
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

    const out = new Uint8Array(16);
    writeU64LE(out, 0, h1Hi, h1Lo);
    writeU64LE(out, 8, h2Hi, h2Lo);
    return out;
  }

  private block(b: Uint8Array, i: number): void {
    mixK1(readU32LE(b, i + 4), readU32LE(b, i));
    let h1Hi = (this.h1Hi ^ rHi) >>> 0;
    let h1Lo = (this.h1Lo ^ rLo) >>> 0;
    rotl64(h1Hi, h1Lo, 27);
    add64(rHi, rLo, this.h2Hi, this.h2Lo);
    mul64(rHi, rLo, 0, 5);
    add64(rHi, rLo, 0, 0x52dce729);
    h1Hi = rHi;
    h1Lo = rLo;

    mixK2(readU32LE(b, i + 12), readU32LE(b, i + 8));
    const h2Hi = (this.h2Hi ^ rHi) >>> 0;
    const h2Lo = (this.h2Lo ^ rLo) >>> 0;
    rotl64(h2Hi, h2Lo, 31);
    add64(rHi, rLo, h1Hi, h1Lo);
    mul64(rHi, rLo, 0, 5);
    add64(rHi, rLo, 0, 0x38495ab5);

    this.h1Hi = h1Hi;
    this.h1Lo = h1Lo;
    this.h2Hi = rHi;
    this.h2Lo = rLo;
  }
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

/** MurmurHash3_x64_128 of `data`: 16 bytes, h1 then h2, each little-endian, as the reference C++ writes them. */
export function murmur3x64_128(data: Uint8Array, seed = 0): Uint8Array {
  return new Murmur3x64_128(seed).update(data).digest();
}
