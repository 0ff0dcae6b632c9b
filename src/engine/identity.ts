// File identity. imohash (github.com/kalafut/imohash, algorithm.md) recognises a file by its size plus three small
// samples, so a moved or renamed photo is found again without reading it whole; sha256 is the slow, exact check
// for when two files claim the same imohash.
import { createHash } from "node:crypto";
import { open } from "node:fs/promises";
import { Murmur3x64_128 } from "./murmur3.ts";
import { openRegularFile } from "./regular-file.ts";

export const IMOHASH_SAMPLE_SIZE = 16 * 1024;
export const IMOHASH_SAMPLE_THRESHOLD = 128 * 1024;

export interface ImohashParams {
  /** Bytes per sample; below 1 the whole message is hashed. */
  sampleSize?: number;
  /** Messages shorter than this are hashed whole. */
  sampleThreshold?: number;
}

/** Byte ranges [start, end) that imohash reads from a message of `size` bytes, per the spec's mode rule. */
export function imohashRanges(size: number, params: ImohashParams = {}): [number, number][] {
  const s = params.sampleSize ?? IMOHASH_SAMPLE_SIZE;
  const t = params.sampleThreshold ?? IMOHASH_SAMPLE_THRESHOLD;
  // Below 4s the samples could overlap or run past the end, so the spec falls back to a full hash. A message of
  // exactly t bytes is sampled: the published vectors for t = 131072 and t = 131073 over 131072 bytes differ.
  if (s < 1 || size < t || size < 4 * s) return [[0, size]];
  const middle = Math.floor(size / 2);
  return [
    [0, s],
    [middle, middle + s],
    [size - s, size],
  ];
}

/** imohash of an in-memory message, e.g. an upload; equal to `imohashFile` of a file holding the same bytes. */
export function imohashBytes(data: Uint8Array, params?: ImohashParams): string {
  const murmur = new Murmur3x64_128();
  for (const [start, end] of imohashRanges(data.length, params)) murmur.update(data.subarray(start, end));
  return finish(murmur, data.length);
}

export interface ImohashFileOptions extends ImohashParams {
  /** The size a scan already stat'ed; saves a stat, and a file found shorter is reported as changed. */
  size?: number;
}

/**
 * imohash of a file, reading only the sampled ranges with positioned reads. If the file turns out shorter than
 * `size`, it changed under us and this throws rather than hashing a torn read.
 */
export async function imohashFile(path: string, opts: ImohashFileOptions = {}): Promise<string> {
  const handle = await open(path, "r");
  try {
    const length = opts.size ?? (await handle.stat()).size;
    const murmur = new Murmur3x64_128();
    for (const [start, end] of imohashRanges(length, opts)) {
      const buffer = new Uint8Array(end - start);
      let filled = 0;
      while (filled < buffer.length) {
        const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, start + filled);
        if (bytesRead === 0) throw new Error(`${path} is shorter than ${length} bytes; it changed while being hashed`);
        filled += bytesRead;
      }
      murmur.update(buffer);
    }
    return finish(murmur, length);
  } finally {
    await handle.close();
  }
}

/**
 * Lower-case hex sha256 of the whole file, streamed. The path is one indexed earlier and may since have become a
 * FIFO: opened plainly, that waits for a writer forever on one of the runtime's few pool threads, and every catalog
 * query of the process then waits behind it. So it is opened without blocking and refused unless a regular file.
 */
export async function sha256File(path: string): Promise<string> {
  const handle = await openRegularFile(path);
  return new Promise((resolve, reject) => {
    const hash = createHash("sha256");
    handle
      .createReadStream()
      .on("data", (chunk) => hash.update(chunk))
      .on("error", reject)
      .on("end", () => resolve(hash.digest("hex")));
  });
}

function finish(murmur: Murmur3x64_128, size: number): string {
  const out = murmur.digestBytes();
  putUvarint(out, size);
  return Buffer.from(out).toString("hex");
}

/** Protobuf-style unsigned varint written over the first bytes of `out`. Arithmetic, not bit ops: sizes exceed 2^31. */
function putUvarint(out: Uint8Array, value: number): void {
  let i = 0;
  while (value >= 0x80) {
    out[i++] = (value % 0x80) | 0x80;
    value = Math.floor(value / 0x80);
  }
  out[i] = value;
}
