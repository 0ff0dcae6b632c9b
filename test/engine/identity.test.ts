import { afterAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { imohashBytes, imohashFile, imohashRanges, sha256File } from "../../src/engine/identity.ts";
import { Murmur3x64_128, murmur3Bytes, murmur3x64_128 } from "../../src/engine/murmur3.ts";

const photos = join(import.meta.dir, "../../../shared/photos");
const dir = mkdtempSync(join(tmpdir(), "imgd-identity-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const utf8 = (s: string) => new TextEncoder().encode(s);

/** Test message of the current imohash spec: repeatedly feed 'A' to one MD5 and append each digest. */
function md5Message(n: number): Uint8Array {
  const out = new Uint8Array(n + 16);
  const md5 = createHash("md5");
  for (let at = 0; at < n; at += 16) {
    md5.update("A");
    out.set(md5.copy().digest(), at);
  }
  return out.subarray(0, n);
}

/**
 * Test message of the first imohash spec: feed 'A' to one MurmurHash3 and append each digest in Go's `Sum()`
 * layout. Digesting finalises a copy of the running state, as Go's does, so this is O(n) rather than hashing an
 * ever-longer run of 'A's from scratch.
 */
function murmurMessage(n: number): Uint8Array {
  const out = new Uint8Array(n + 16);
  const murmur = new Murmur3x64_128();
  const a = utf8("A");
  for (let at = 0; at < n; at += 16) out.set(murmur.update(a).digestBytes(), at);
  return out.subarray(0, n);
}

describe("murmur3x64_128", () => {
  // Published with github.com/spaolacci/murmur3 as (h1, h2).
  const vectors: [number, string, string, string][] = [
    [0x00, "", "0000000000000000", "0000000000000000"],
    [0x00, "hello", "cbd8a7b341bd9b02", "5b1e906a48ae1d19"],
    [0x00, "hello, world", "342fac623a5ebc8e", "4cdcbc079642414d"],
    [0x00, "19 Jan 2038 at 3:14:07 AM", "b89e5988b737affc", "664fc2950231b2cb"],
    [0x00, "The quick brown fox jumps over the lazy dog.", "cd99481f9ee902c9", "695da1a38987b6e7"],
    [0x01, "", "4610abe56eff5cb5", "51622daa78f83583"],
    [0x01, "hello", "a78ddff5adae8d10", "128900ef20900135"],
    [0x01, "The quick brown fox jumps over the lazy dog.", "fb3325171f9744da", "aaf8b92a5f722952"],
    [0x2a, "", "f02aa77dfa1b8523", "d1016610da11cbb9"],
    [0x2a, "hello, world", "b91864d797caa956", "d5d139a55afe6150"],
    [0x2a, "19 Jan 2038 at 3:14:07 AM", "fd8f19ebdc8c6b6a", "d30fdc310fa08ff9"],
  ];

  for (const [seed, text, h1, h2] of vectors) {
    test(`hashes ${JSON.stringify(text)} with seed ${seed} to the published h1 and h2`, () => {
      expect(murmur3x64_128(utf8(text), seed)).toEqual({ h1: BigInt(`0x${h1}`), h2: BigInt(`0x${h2}`) });
      expect(hex(murmur3Bytes(utf8(text), seed))).toBe(h1 + h2);
    });
  }

  test("hashes the single byte 'A' to the value imohash's test message starts with", () => {
    expect(hex(murmur3Bytes(utf8("A")))).toBe("035fc2b79a29b17a387df29c46dd9937");
  });

  test("hashes empty input with seed 0 to all zeros", () => {
    expect(murmur3Bytes(new Uint8Array(0))).toEqual(new Uint8Array(16));
    expect(murmur3x64_128(new Uint8Array(0))).toEqual({ h1: 0n, h2: 0n });
  });

  test("keeps full 64-bit lanes, with the top bit set and carries across the 32-bit halves", () => {
    // Every tail length 0..31 against a digest built in BigInt arithmetic straight from the reference algorithm.
    const data = md5Message(31);
    for (let n = 0; n <= 31; n++) {
      const part = data.subarray(0, n);
      expect(murmur3x64_128(part, 0x9747b28c)).toEqual(bigintMurmur(part, 0x9747b28c));
    }
  });

  test("passes SMHasher's verification value 0x6384BA69, which covers every tail length and many seeds", () => {
    const key = new Uint8Array(256);
    for (let i = 0; i < 256; i++) key[i] = i;
    // SMHasher hashes the reference C++ output, which writes h1 and h2 little-endian.
    const hashes = new Uint8Array(256 * 16);
    const view = new DataView(hashes.buffer);
    for (let i = 0; i < 256; i++) {
      const { h1, h2 } = murmur3x64_128(key.subarray(0, i), 256 - i);
      view.setBigUint64(i * 16, h1, true);
      view.setBigUint64(i * 16 + 8, h2, true);
    }
    const { h1 } = murmur3x64_128(hashes);
    expect(Number(h1 & 0xffffffffn)).toBe(0x6384ba69);
  });

  test("gives the same digest however the input is split across updates", () => {
    const data = md5Message(1000);
    const whole = hex(murmur3Bytes(data));
    for (const cut of [1, 7, 15, 16, 17, 333]) {
      const h = new Murmur3x64_128();
      for (let at = 0; at < data.length; at += cut) h.update(data.subarray(at, at + cut));
      expect(hex(h.digestBytes())).toBe(whole);
    }
  });

  test("the first imohash spec's murmur-generated message starts and ends with its published bytes", () => {
    expect(hex(murmurMessage(16))).toBe("035fc2b79a29b17a387df29c46dd9937");
    expect(hex(murmurMessage(1_000_000).subarray(-16))).toBe("7b7cd46489e93605eb7894c5d338463f");
  });
});

describe("imohash", () => {
  // kalafut/imohash algorithm.md and spec_test.go: [sampleSize, sampleThreshold, n, hash] over md5Message(n).
  const specVectors: [number, number, number, string][] = [
    [16384, 131072, 0, "00000000000000000000000000000000"],
    [16384, 131072, 1, "01659e2ec0f3c75bf39e43a41adb5d4f"],
    [16384, 131072, 127, "7f47671cc79d4374404b807249f3166e"],
    [16384, 131072, 128, "800183e5dbea2e5199ef7c8ea963a463"],
    [16384, 131072, 4095, "ff1f770d90d3773949d89880efa17e60"],
    [16384, 131072, 4096, "802048c26d66de432dbfc71afca6705d"],
    [16384, 131072, 131072, "8080085a3d3af2cb4b3a957811cdf370"],
    [16384, 131073, 131072, "808008282d3f3b53e1fd132cc51fcc1d"],
    [16384, 131072, 500000, "a0c21e44a0ba3bddee802a9d1c5332ca"],
    [50, 131072, 300000, "e0a712edd8815c606344aed13c44adcf"],
    [0, 100, 999, "e7078bfc9bdf7d7706adbd21002bb752"],
    [50, 9999, 999, "e7078bfc9bdf7d7706adbd21002bb752"],
    [250, 20, 999, "e7078bfc9bdf7d7706adbd21002bb752"],
    [250, 20, 1000, "e807ae87d3dafb5eb6518a5a256297e9"],
  ];
  // The first spec's vectors over murmurMessage(n); all use parameters where both versions of the mode rule agree.
  const firstSpecVectors: [number, number, number, string][] = [
    [16384, 131072, 1, "016ac6dd306a3e594e711127c5b5a8e4"],
    [16384, 131072, 127, "7f0e0eaa0a415e2878303214a087fbab"],
    [16384, 131072, 128, "80017902d85ab752459758292a217ed8"],
    [16384, 131072, 4095, "ff1fc7e3b9890469ee676df99f6ac7b7"],
    [16384, 131072, 4096, "80203d4ea589349dcdf63511a8d49d4a"],
    [16384, 131072, 131072, "808008ed886018d5cd37a9b35bbae286"],
    [16384, 131073, 131072, "808008ac6ab33ddcaadea68ba5ad4f05"],
    [16384, 131072, 500000, "a0c21ea46738cf366d496962000a45f7"],
  ];

  test.each(specVectors)("spec vector: s=%d t=%d over %d bytes hashes in memory to %s", (s, t, n, expected) => {
    expect(imohashBytes(md5Message(n), { sampleSize: s, sampleThreshold: t })).toBe(expected);
  });

  test.each(specVectors)("spec vector: s=%d t=%d over a %d-byte file hashes to %s", async (s, t, n, expected) => {
    const path = join(dir, `spec-${s}-${t}-${n}`);
    writeFileSync(path, md5Message(n));
    expect(await imohashFile(path, { sampleSize: s, sampleThreshold: t })).toBe(expected);
    expect(await imohashFile(path, { size: n, sampleSize: s, sampleThreshold: t })).toBe(expected);
  });

  test.each(firstSpecVectors)("first-spec vector: s=%d t=%d over %d bytes hashes to %s", async (s, t, n, expected) => {
    const message = murmurMessage(n);
    expect(imohashBytes(message, { sampleSize: s, sampleThreshold: t })).toBe(expected);
    const path = join(dir, `first-spec-${s}-${t}-${n}`);
    writeFileSync(path, message);
    expect(await imohashFile(path, { sampleSize: s, sampleThreshold: t })).toBe(expected);
  });

  test("matches the Go library's own check that 'hello' hashes to its murmur3 with the size in front", () => {
    expect(imohashBytes(utf8("hello"))).toBe("05d8a7b341bd9b025b1e906a48ae1d19");
  });

  test("uses the defaults of 16 KiB samples above a 128 KiB threshold", () => {
    expect(imohashRanges(128 * 1024 - 1)).toEqual([[0, 128 * 1024 - 1]]);
    expect(imohashRanges(200_001)).toEqual([
      [0, 16384],
      [100_000, 116_384],
      [200_001 - 16384, 200_001],
    ]);
  });

  test("a sampled hash ignores bytes between samples but sees the edge byte of every sample", () => {
    const size = 128 * 1024;
    const s = 16 * 1024;
    const base = new Uint8Array(size).fill(0x41);
    const withByte = (at: number) => {
      const copy = base.slice();
      copy[at] = 0x42;
      return imohashBytes(copy);
    };
    const plain = imohashBytes(base);
    expect(withByte(s)).toBe(plain);
    expect(withByte(size - s - 1)).toBe(plain);
    const edges = [s - 1, size / 2, size / 2 + s - 1, size - s].map(withByte);
    expect(new Set([plain, ...edges]).size).toBe(5);
  });

  test("files that differ only in size get different hashes even when every sample is the same", () => {
    const a = new Uint8Array(300_000).fill(7);
    const b = new Uint8Array(300_001).fill(7);
    expect(imohashBytes(a)).not.toBe(imohashBytes(b));
    expect(imohashBytes(b).slice(0, 6)).toBe("e1a712");
  });

  test("hashing a real photo from disk matches hashing its bytes in memory", async () => {
    for (const name of ["baboon.jpg", "astronaut.png"]) {
      const path = join(photos, name);
      const bytes = new Uint8Array(readFileSync(path));
      expect(await imohashFile(path)).toBe(imohashBytes(bytes));
      expect(await imohashFile(path, { size: bytes.length })).toBe(imohashBytes(bytes));
    }
  });

  test("a file shorter than the size the caller stat'ed earlier is reported as changed, not hashed", async () => {
    const path = join(dir, "shrunk");
    writeFileSync(path, md5Message(1000));
    await expect(imohashFile(path, { size: 5000, sampleSize: 0 })).rejects.toThrow(/changed while being hashed/);
  });

  test("a missing file rejects with the path in the error", async () => {
    await expect(imohashFile(join(dir, "nope.jpg"))).rejects.toThrow(/nope\.jpg/);
  });
});

describe("sha256File", () => {
  test("streams a file to its sha256 hex digest", async () => {
    const path = join(dir, "abc");
    writeFileSync(path, "abc");
    expect(await sha256File(path)).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  test("agrees with the photo set's published SHA256SUMS", async () => {
    const line = readFileSync(join(photos, "SHA256SUMS"), "utf8")
      .split("\n")
      .find((l) => l.includes("baboon.jpg"));
    expect(line).toBeDefined();
    expect(await sha256File(join(photos, "baboon.jpg"))).toBe(line!.split(/\s+/)[0]!);
  });
});

/** MurmurHash3_x64_128 transcribed directly in BigInt: slow, but with no 32-bit splitting to get wrong. */
function bigintMurmur(data: Uint8Array, seed: number): { h1: bigint; h2: bigint } {
  const M = (1n << 64n) - 1n;
  const rotl = (x: bigint, r: bigint) => ((x << r) | (x >> (64n - r))) & M;
  const fmix = (k: bigint) => {
    k ^= k >> 33n;
    k = (k * 0xff51afd7ed558ccdn) & M;
    k ^= k >> 33n;
    k = (k * 0xc4ceb9fe1a85ec53n) & M;
    return k ^ (k >> 33n);
  };
  const c1 = 0x87c37b91114253d5n;
  const c2 = 0x4cf5ad432745937fn;
  const word = (at: number, len: number) => {
    let v = 0n;
    for (let i = Math.min(len, 8) - 1; i >= 0; i--) v = (v << 8n) | BigInt(data[at + i]!);
    return v;
  };
  let h1 = BigInt(seed);
  let h2 = BigInt(seed);
  const blocks = Math.floor(data.length / 16);
  for (let b = 0; b < blocks; b++) {
    h1 ^= (rotl((word(b * 16, 8) * c1) & M, 31n) * c2) & M;
    h1 = (((rotl(h1, 27n) + h2) & M) * 5n + 0x52dce729n) & M;
    h2 ^= (rotl((word(b * 16 + 8, 8) * c2) & M, 33n) * c1) & M;
    h2 = (((rotl(h2, 31n) + h1) & M) * 5n + 0x38495ab5n) & M;
  }
  const tail = blocks * 16;
  const rest = data.length - tail;
  if (rest > 8) h2 ^= (rotl((word(tail + 8, rest - 8) * c2) & M, 33n) * c1) & M;
  if (rest > 0) h1 ^= (rotl((word(tail, rest) * c1) & M, 31n) * c2) & M;
  const len = BigInt(data.length);
  h1 ^= len;
  h2 ^= len;
  h1 = (h1 + h2) & M;
  h2 = (h2 + h1) & M;
  h1 = fmix(h1);
  h2 = fmix(h2);
  h1 = (h1 + h2) & M;
  h2 = (h2 + h1) & M;
  return { h1, h2 };
}
