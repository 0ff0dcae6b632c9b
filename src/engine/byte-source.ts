// Random access to a file's bytes, from its path or from bytes already read: formats imgd parses itself (a camera
// RAW's TIFF directories, a BMP's rows) read only the parts they need, and a file of gigabytes never sits in memory.
import { open } from "node:fs/promises";
import { ImageError } from "./types.ts";

export interface ByteSource {
  size: number;
  /** Up to `length` bytes from `at`; fewer where the file ends. */
  read(at: number, length: number): Promise<Uint8Array>;
}

export function bytesSource(bytes: Uint8Array): ByteSource {
  return { size: bytes.length, read: async (at, length) => bytes.subarray(at, at + length) };
}

/**
 * `use` given positional reads of the file at `path`, which is closed after. A file that will not open, or whose
 * reads fail (an I/O error, a share gone), is "unreadable": that says nothing of its content, and an index keeps the
 * row of an unreadable file as it was, where a "corrupt" one would replace it.
 */
export async function withFileSource<T>(path: string, label: string, use: (file: ByteSource) => Promise<T>): Promise<T> {
  const unreadable = (err: Error) => new ImageError("unreadable", `${label}: cannot read the file (${err.message})`);
  const handle = await open(path, "r").catch((err: Error) => {
    throw unreadable(err);
  });
  try {
    const size = (await handle.stat().catch((err: Error) => {
      throw unreadable(err);
    })).size;
    return await use({
      size,
      read: async (at, length) => {
        const buf = Buffer.alloc(Math.max(0, Math.min(length, size - at)));
        const { bytesRead } = await handle.read(buf, 0, buf.length, at).catch((err: Error) => {
          throw unreadable(err);
        });
        return buf.subarray(0, bytesRead);
      },
    });
  } finally {
    await handle.close();
  }
}

/** The source for `input`, a path or the file's bytes. */
export async function withByteSource<T>(input: string | Uint8Array, label: string, use: (file: ByteSource) => Promise<T>): Promise<T> {
  return input instanceof Uint8Array ? use(bytesSource(input)) : withFileSource(input, label, use);
}
