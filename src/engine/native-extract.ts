// Unpacks the native packages that build.ts embedded in dist/imgd. Shared libraries cannot be dlopen()ed from
// inside the executable, so they go to a cache dir keyed by the bundle's sha256: a new build never reuses a stale
// tree, and a half-written tree (killed mid-extract) is never used because it only becomes visible by rename.
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { cacheDirs } from "./cache-dirs.ts";
import { dirname, join } from "node:path";
import { createHash } from "node:crypto";

export interface BundleEntry {
  path: string;
  offset: number;
  size: number;
  mode: number;
}

const MARKER = ".imgd-native-complete";

/** Layout: u32 LE header length, JSON header { entries }, then the concatenated file bytes; zstd-compressed whole. */
export function packNativeBundle(files: { path: string; bytes: Uint8Array; mode: number }[]): Uint8Array {
  const entries: BundleEntry[] = [];
  let offset = 0;
  for (const f of files) {
    entries.push({ path: f.path, offset, size: f.bytes.length, mode: f.mode });
    offset += f.bytes.length;
  }
  const header = new TextEncoder().encode(JSON.stringify({ entries }));
  const raw = new Uint8Array(4 + header.length + offset);
  new DataView(raw.buffer).setUint32(0, header.length, true);
  raw.set(header, 4);
  let at = 4 + header.length;
  for (const f of files) {
    raw.set(f.bytes, at);
    at += f.bytes.length;
  }
  return Bun.zstdCompressSync(raw, { level: 6 });
}

function cacheRoots(): string[] {
  const roots: string[] = [];
  if (process.env.IMGD_NATIVE_CACHE) roots.push(process.env.IMGD_NATIVE_CACHE);
  roots.push(...cacheDirs("native"));
  return roots;
}

/** Returns the directory holding node_modules/ with the embedded packages, extracting it first if needed. */
export function ensureNativeTree(bundlePath: string, version: string, sha256: string): string {
  const name = `${version}-${sha256.slice(0, 16)}`;
  let lastError: unknown;
  for (const root of cacheRoots()) {
    const dir = join(root, name);
    if (readMarker(dir) === sha256) return dir;
    try {
      extractTo(bundlePath, sha256, dir);
      return dir;
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`cannot unpack imgd's native libraries into any cache dir (${cacheRoots().join(", ")}): ${lastError}`);
}

function readMarker(dir: string): string | null {
  try {
    return readFileSync(join(dir, MARKER), "utf8").trim();
  } catch {
    return null;
  }
}

function extractTo(bundlePath: string, sha256: string, dir: string): void {
  const compressed = new Uint8Array(readFileSync(bundlePath));
  const actual = createHash("sha256").update(compressed).digest("hex");
  if (actual !== sha256) throw new Error(`embedded native bundle is damaged (sha256 ${actual}, expected ${sha256})`);
  const raw = Bun.zstdDecompressSync(compressed);
  const headerLength = new DataView(raw.buffer, raw.byteOffset).getUint32(0, true);
  const { entries } = JSON.parse(new TextDecoder().decode(raw.subarray(4, 4 + headerLength))) as {
    entries: BundleEntry[];
  };
  const dataStart = 4 + headerLength;
  mkdirSync(dirname(dir), { recursive: true });
  const staging = `${dir}.tmp-${process.pid}`;
  rmSync(staging, { recursive: true, force: true });
  for (const e of entries) {
    const target = join(staging, e.path);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, raw.subarray(dataStart + e.offset, dataStart + e.offset + e.size));
    chmodSync(target, e.mode);
  }
  writeFileSync(join(staging, MARKER), sha256);
  try {
    renameSync(staging, dir);
  } catch (err) {
    // Another imgd process won the race; its tree is as good as ours.
    rmSync(staging, { recursive: true, force: true });
    if (readMarker(dir) !== sha256) {
      if (existsSync(dir)) rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
}
