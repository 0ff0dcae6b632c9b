// Small JPEG previews for browsing results. A thumbnail depends on the image content and its size bucket; the
// catalog's imohash names what a file held when it was indexed (and two different files of one size can share
// it), so the key is that imohash and the file as it is now: device, inode, size and mtime. The key doubles as a
// strong ETag, a moved (renamed) file keeps its cached thumbnail, and a file edited since it was indexed gets its
// own, never one filed under a hash that another file still has. On disk each file (device and inode) has a folder
// per size holding only the thumbnail of its latest version: an edit replaces the old one instead of leaving it.
import { mkdirSync, readdirSync, renameSync, unlinkSync, writeFileSync } from "node:fs";
import { readdir, readFile, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { LruCache } from "./lru-cache.ts";
import { loadSharp } from "./native.ts";
import { asImageError, DEFAULT_MAX_PIXELS, edgesOf } from "./decode.ts";
import { isBmpInput, readBmp, type BmpPixels } from "./bmp.ts";
import { hevcHeifPixels } from "./heic-decoder.ts";
import { isRawName, orientPreview, readRawPreview } from "./raw-preview.ts";
import { ImageError } from "./types.ts";

/** The thumbnail cache's folder under an index directory; an index scan never walks it. */
export const THUMBNAIL_DIR = "thumbs";

/** Requested sizes snap up to one of these, so a client cannot fill the caches with one entry per pixel count. */
export const THUMBNAIL_SIZES = [128, 256, 512, 1024] as const;

export function thumbnailSizeFor(requested: number): number {
  return THUMBNAIL_SIZES.find((s) => s >= requested) ?? THUMBNAIL_SIZES[THUMBNAIL_SIZES.length - 1]!;
}

/** An original that no longer decodes (truncated, emptied or replaced since it was indexed) is an ImageError. */
export async function renderThumbnail(source: string | Uint8Array, size: number): Promise<Uint8Array> {
  const label = typeof source === "string" ? source : "image";
  // A camera RAW is shown by the JPEG preview it carries, as it was indexed (raw-preview.ts); a BMP from the pixels
  // bmp.ts reads, libvips having no BMP loader.
  const raw = typeof source === "string" && isRawName(source) ? await readRawPreview(source, source) : null;
  const bmp = !raw && (await isBmpInput(source, label)) ? await readBmp(source, label, DEFAULT_MAX_PIXELS) : null;
  const sharp = loadSharp();
  try {
    // A phone's HEIC (HEVC) from heic-decoder.ts's threads, upright; libvips reads it for everything else.
    const pixels: BmpPixels | null = bmp ?? (raw ? null : await hevcHeifPixels(source, label, DEFAULT_MAX_PIXELS));
    const input = pixels
      ? sharp(pixels.data, { raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } })
      : sharp(raw ? raw.jpeg : source, { limitInputPixels: DEFAULT_MAX_PIXELS, autoOrient: !raw });
    const resized = input.resize(size, size, {
      fit: "inside",
      withoutEnlargement: true,
    });
    const out = await (raw ? orientPreview(resized, raw.orientation) : resized)
      .flatten({ background: "#ffffff" })
      .jpeg({ quality: 80, mozjpeg: false })
      .toBuffer();
    return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
  } catch (err) {
    // Its ends read only now, to tell a truncated file from a corrupt one: the render itself leaves the file to
    // libvips, and the file may now be of any size.
    const bytes = raw ? raw.jpeg : typeof source === "string" ? await edgesOf(source) : source;
    throw asImageError(err, label, bytes);
  }
}

export interface Thumbnail {
  bytes: Uint8Array;
  etag: string;
  source: "memory" | "disk" | "rendered";
}

export class ThumbnailCache {
  private readonly memory: LruCache<string, Uint8Array>;
  private readonly rendering = new Map<string, Promise<{ bytes: Uint8Array; cacheable: boolean }>>();
  diskHits = 0;
  rendered = 0;

  /**
   * `dir` null keeps thumbnails in memory only (a read-only index directory). 32 MB holds a few thousand; the disk
   * cache behind it has the rest, and the server's whole budget is 400 MB.
   */
  constructor(
    private readonly dir: string | null,
    memoryBytes = 32 * 2 ** 20,
  ) {
    this.memory = new LruCache({ maxEntries: 100_000, maxBytes: memoryBytes, sizeOf: (b) => b.byteLength });
    if (dir) void dropFlatLayout(dir);
  }

  get memoryHits(): number {
    return this.memory.hits;
  }

  /** `imohash` is the catalog's for `source`, which may have changed since. */
  async get(imohash: string, size: number, source: string): Promise<Thumbnail> {
    const { file: which, version } = await fileVersion(source);
    const key = `${imohash}-${which}-${version}-${size}`;
    const etag = `"${key}"`;
    const inMemory = this.memory.get(key);
    if (inMemory) return { bytes: inMemory, etag, source: "memory" };
    const file = this.dir ? join(this.dir, String(size), which, `${imohash}-${version}.jpg`) : null;
    if (file) {
      const onDisk = await readFile(file).catch(() => null);
      if (onDisk) {
        this.diskHits++;
        const bytes = new Uint8Array(onDisk);
        this.memory.set(key, bytes);
        return { bytes, etag, source: "disk" };
      }
    }
    // Concurrent requests for one thumbnail (a page of results loading) share a single render.
    let pending = this.rendering.get(key);
    if (!pending) {
      pending = this.render(source, size, version, file).finally(() => this.rendering.delete(key));
      this.rendering.set(key, pending);
    }
    const { bytes, cacheable } = await pending;
    if (cacheable) this.memory.set(key, bytes);
    return { bytes, etag, source: "rendered" };
  }

  private async render(source: string, size: number, version: string, file: string | null): Promise<{ bytes: Uint8Array; cacheable: boolean }> {
    const bytes = await renderThumbnail(source, size);
    this.rendered++;
    // Written to while it was rendered: the picture may be of neither version, so it is not kept under this one.
    const cacheable = (await fileVersion(source).catch(() => null))?.version === version;
    if (file && cacheable) {
      try {
        const folder = join(file, "..");
        mkdirSync(folder, { recursive: true });
        const tmp = `${file}.${process.pid}.tmp`;
        writeFileSync(tmp, bytes);
        renameSync(tmp, file);
        const name = file.slice(folder.length + 1);
        // Earlier versions of this file (and of a deleted file whose inode it reuses) are not shown again.
        for (const old of readdirSync(folder)) if (old !== name && old.endsWith(".jpg")) unlinkSync(join(folder, old));
      } catch {
        // The disk cache is an optimisation: a full or read-only disk must not fail the request.
      }
    }
    return { bytes, cacheable };
  }
}

/** Thumbnails filed flat under their size by an earlier imgd, which nothing reads now. */
async function dropFlatLayout(dir: string): Promise<void> {
  for (const size of THUMBNAIL_SIZES) {
    const folder = join(dir, String(size));
    const names = await readdir(folder).catch(() => [] as string[]);
    for (const name of names) if (name.endsWith(".jpg")) await unlink(join(folder, name)).catch(() => {});
  }
}

/**
 * The file as it is now, in hex: which file (device and inode: the kernel's coarse clock gives two files written
 * within one tick the same mtime) and which version of it (size and modification time).
 */
async function fileVersion(path: string): Promise<{ file: string; version: string }> {
  // As bigints: an inode number can pass 2^53.
  const info = await stat(path, { bigint: true }).catch((err: Error) => {
    throw new ImageError("unreadable", `${path}: cannot read the file (${err.message})`);
  });
  const hex = (...n: bigint[]) => n.map((v) => v.toString(16)).join("-");
  return { file: hex(info.dev, info.ino), version: hex(info.size, info.mtimeNs) };
}
