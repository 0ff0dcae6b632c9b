// File bytes -> 8-bit interleaved RGB with EXIF orientation applied, as Pillow's `convert("RGB")` would see it,
// shrunk on load when the consumer needs far fewer pixels than a camera JPEG holds.
import { open, stat } from "node:fs/promises";
import { extname } from "node:path";
import type { Metadata, SharpOptions } from "sharp";
import { isBmpInput, readBmp, type BmpPixels } from "./bmp.ts";
import { parseExif } from "./exif.ts";
import { decodeHevcHeif, isHevcHeif } from "./heic-decoder.ts";
import { loadSharp } from "./native.ts";
import { isRawName, orientPreview, readRawPreview, uprightSize } from "./raw-preview.ts";
import { ImageError, tooManyPixels, type DecodedImage, type FailureReason } from "./types.ts";

export interface DecodeOptions {
  /** Shrink-on-load hint: the smallest short side the consumer needs (e.g. 224). */
  targetShortSide?: number;
  /** Images with more pixels than this are refused from their header. Default 100 million. */
  maxPixels?: number;
  /**
   * The file's name, when `input` is its bytes: a camera RAW (raw-preview.ts's extensions) is decoded from the JPEG
   * preview it carries, which libvips would not find (a file so named that is no RAW is decoded as what it is), and a
   * BMP by bmp.ts, as libvips has no BMP loader (a BMP is known by its header too). A path input is its own name.
   */
  name?: string;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

const JPEG_SHRINK_FACTORS = [8, 4, 2];

/**
 * sharp's names for the formats of scan.ts's processed images (AVIF and HEIC are both "heif"; a RAW file is read by
 * its JPEG preview; "bmp" is bmp.ts's, which reads what libvips cannot). libvips also reads SVG, PDF and more; those are refused like any other non-image, whatever the
 * file is called: an uploaded SVG can carry script, and would be served back as a page.
 */
const INDEXED_FORMATS: ReadonlySet<string> = new Set(["jpeg", "png", "webp", "gif", "tiff", "heif", "bmp"]);

/**
 * The short side a JPEG decoded at 1/2, 1/4 or 1/8 scale would have, using the largest factor that still leaves at
 * least `target` pixels; null when no factor fits. libjpeg rounds scaled sizes up, so floor keeps us on the safe side.
 */
export function jpegShrinkShortSide(shortSide: number, target: number): number | null {
  for (const f of JPEG_SHRINK_FACTORS) {
    if (Math.floor(shortSide / f) >= target) return Math.ceil(shortSide / f);
  }
  return null;
}

/**
 * `input` is the file's bytes, or its path: then libvips reads the file itself, a header first and the pixels as it
 * decodes them, so a file of gigabytes (a film scan, or a video called .jpg) never sits in memory whole.
 */
export async function decodeImage(input: string | Uint8Array, opts: DecodeOptions = {}): Promise<DecodedImage> {
  const label = typeof input === "string" ? input : "image";
  const size = typeof input === "string" ? await fileSize(input) : input.length;
  if (size === 0) throw new ImageError("empty-file", `${label}: the file is empty (0 bytes)`);
  const name = opts.name ?? (typeof input === "string" ? input : "");
  // A file named as a RAW that is no RAW container (a JPEG renamed .CR2) is decoded as what it is.
  const preview = isRawName(name) ? await readRawPreview(input, label) : null;
  if (preview) {
    const image = await decodePixels(preview.jpeg, `${label} (its embedded JPEG preview)`, opts, preview.orientation);
    return { ...image, format: extname(name).slice(1).toLowerCase(), exif: preview.exif };
  }
  if (await isBmpInput(input, name)) {
    return decodePixels(await readBmp(input, label, opts.maxPixels ?? DEFAULT_MAX_PIXELS), label, opts);
  }
  return decodePixels(input, label, opts);
}

/**
 * `input` is the file (its path or bytes) for libvips to decode, or pixels imgd decoded itself (a BMP's).
 * `orientation` is given for a RAW's preview: the RAW's own, applied instead of any the preview carries.
 */
async function decodePixels(input: string | Uint8Array | BmpPixels, label: string, opts: DecodeOptions, orientation?: number): Promise<DecodedImage> {
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const sharp = loadSharp();
  // Also a HEIC's, once heic-decoder.ts has decoded it (below): libvips reads its header but not its HEVC.
  let pixels = typeof input === "string" || input instanceof Uint8Array ? null : input;
  const load = (options: SharpOptions) =>
    pixels
      ? sharp(pixels.data, { ...options, raw: { width: pixels.width, height: pixels.height, channels: pixels.channels } })
      : sharp(input as string | Uint8Array, options);
  const failure = async (err: unknown) =>
    asImageError(err, label, typeof input === "string" ? await edgesOf(input) : input instanceof Uint8Array ? input : new Uint8Array(0));

  let meta: Partial<Pick<Metadata, "width" | "height" | "compression" | "autoOrient" | "exif">> & { format?: string };
  try {
    meta = pixels ? { format: "bmp", width: pixels.width, height: pixels.height } : await load({ limitInputPixels: false }).metadata();
  } catch (err) {
    throw await failure(err);
  }
  if (!INDEXED_FORMATS.has(meta.format ?? "")) {
    throw new ImageError("not-an-image", `${label}: ${meta.format ?? "this"} is not an image format imgd indexes (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC, BMP)`);
  }
  let width = meta.width ?? 0;
  let height = meta.height ?? 0;
  // Checked from the header, before any pixel is decoded: a small file can claim a huge canvas.
  if (width * height > maxPixels) throw tooManyPixels(label, width, height, maxPixels);
  if (!pixels && isHevcHeif(meta)) {
    // libheif turns it upright by its irot and imir boxes; libvips already reports no EXIF orientation for a HEIF
    // (the EXIF one, which iPhones also write, would turn it a second time), so nothing below turns it again.
    pixels = await decodeHevcHeif(input as string | Uint8Array).catch(async (err) => {
      throw await failure(err);
    });
    [width, height] = [pixels.width, pixels.height];
    meta = { ...meta, autoOrient: { width, height } };
  }

  // Pillow ignores embedded ICC profiles and so did CLIP's training data, so we keep pixel values as stored
  // (CMYK is still converted to sRGB, through libvips' generic CMYK profile).
  let pipeline = load({ failOn: "error", limitInputPixels: maxPixels, autoOrient: orientation === undefined, ignoreIcc: true });
  const shrunkShortSide =
    meta.format === "jpeg" && opts.targetShortSide
      ? jpegShrinkShortSide(Math.min(width, height), opts.targetShortSide)
      : null;
  if (shrunkShortSide !== null) {
    // sharp has no direct handle on libjpeg's scaled decode for in-memory input. Asking for the size a 1/f decode
    // would give lets sharp decode at 1/(f/2) (it always keeps one halving for its own reducer) and reduce the rest,
    // so the result is never smaller than the target and the exact resize stays with preprocess.
    pipeline = pipeline.resize(shrunkShortSide, shrunkShortSide, { fit: "outside", fastShrinkOnLoad: true });
  } else if (opts.targetShortSide && meta.format !== "jpeg" && Math.min(width, height) > 2 * opts.targetShortSide) {
    // Other formats have no scaled decode, but libvips can reduce while it streams the rows in. Returning the full
    // frame instead made a run over 24 MP PNGs hold 3.5 GB: a 72 MB buffer per image in flight, freed only by GC.
    // Twice the target, like a JPEG's scaled decode, leaves the exact resize to preprocess.
    const side = 2 * opts.targetShortSide;
    pipeline = pipeline.resize(side, side, { fit: "outside" });
  }
  // Turned after the resize, as sharp's autoOrient turns a JPEG: the same pixels as the preview tagged with it.
  if (orientation !== undefined) pipeline = orientPreview(pipeline, orientation);
  let data: Uint8Array;
  let info: { width: number; height: number; channels: number };
  try {
    // removeAlpha drops alpha without compositing, as Pillow's convert("RGB") does.
    const result = await pipeline
      .removeAlpha()
      .toColourspace("srgb")
      .raw({ depth: "uchar" })
      .toBuffer({ resolveWithObject: true });
    data = new Uint8Array(result.data.buffer, result.data.byteOffset, result.data.byteLength);
    info = result.info;
  } catch (err) {
    throw await failure(err);
  }
  if (info.channels !== 3) {
    throw new ImageError("corrupt", `${label}: decoded to ${info.channels} channels, expected RGB`);
  }
  const oriented =
    orientation !== undefined
      ? uprightSize({ width, height, orientation })
      : (meta.autoOrient ?? { width, height });
  return {
    data,
    width: info.width,
    height: info.height,
    sourceWidth: oriented.width,
    sourceHeight: oriented.height,
    format: meta.format ?? "unknown",
    exif: parseExif(meta.exif),
  };
}

/**
 * The size of the regular file at `path`; anything else (missing, a folder, a pipe) cannot be read as an image, nor
 * can a file that this process may not open (libvips would call it an unsupported format).
 */
async function fileSize(path: string): Promise<number> {
  let cause: string;
  try {
    const s = await stat(path);
    if (s.isFile()) {
      await (await open(path, "r")).close();
      return s.size;
    }
    cause = s.isDirectory() ? "it is a directory" : "it is not a regular file";
  } catch (err) {
    cause = err instanceof Error ? err.message : String(err);
  }
  throw new ImageError("unreadable", `${path}: cannot read the file (${cause})`);
}

/**
 * A file's first and last bytes and its size: what `asImageError` needs to tell a file that stops before its own
 * structure says it should (an interrupted copy) from one that is damaged or no image.
 */
export interface FileEdges {
  head: Uint8Array;
  tail: Uint8Array;
  size: number;
}

// The head holds a HEIF's boxes up to its media data; the tail a JPEG's end marker or a PNG's IEND chunk.
const HEAD_BYTES = 64 * 1024;
const TAIL_BYTES = 4096;

export function edgesOfBytes(bytes: Uint8Array): FileEdges {
  return { head: bytes.subarray(0, HEAD_BYTES), tail: bytes.subarray(Math.max(0, bytes.length - TAIL_BYTES)), size: bytes.length };
}

/** The edges of the file at `path`, read without reading the rest (it may be gigabytes long). */
export async function edgesOf(path: string): Promise<FileEdges> {
  const none = { head: new Uint8Array(0), tail: new Uint8Array(0), size: 0 };
  const handle = await open(path, "r").catch(() => null);
  if (!handle) return none;
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(Math.min(size, HEAD_BYTES));
    const tail = Buffer.alloc(Math.min(size, TAIL_BYTES));
    await handle.read(head, 0, head.length, 0);
    await handle.read(tail, 0, tail.length, size - tail.length);
    return { head, tail, size };
  } catch {
    return none;
  } finally {
    await handle.close();
  }
}

// libvips reports failures as text only; these patterns cover the messages of the loaders sharp ships.
const REASONS: [RegExp, FailureReason][] = [
  [/pixel limit/i, "too-many-pixels"],
  [/unsupported image format|not a known file format|bad seek|improper image header/i, "not-an-image"],
  [/premature end|truncated|unexpected end|end of (file|stream|data)|not enough data|read error|short read/i, "truncated"],
];

export function asImageError(err: unknown, label: string, file: Uint8Array | FileEdges): ImageError {
  if (err instanceof ImageError) return err;
  const cause = ownMessage(err instanceof Error ? err.message : String(err));
  // libvips keeps one error buffer for all threads: the text can be empty ("Unknown error") or carry another
  // image's failure, so whether a file stops early is read from its bytes where its format records that, and from
  // the text only where it does not.
  const early = endsEarly(file instanceof Uint8Array ? edgesOfBytes(file) : file);
  const reason =
    early === true
      ? "truncated"
      : (REASONS.find(([re, why]) => !(early === false && why === "truncated") && re.test(cause))?.[1] ?? "corrupt");
  const what: Record<FailureReason, string> = {
    "empty-file": "the file is empty",
    "not-an-image": "not an image in a format we can read",
    truncated: "the image data ends early (truncated file)",
    corrupt: "the image data is corrupt",
    "too-many-pixels": "the image has more pixels than the limit",
    unreadable: "cannot read the file",
  };
  return new ImageError(reason, `${label}: ${what[reason]} (${cause})`);
}

/** The libvips text without the repeats that its shared error buffer piles up, and not longer than a line. */
function ownMessage(text: string): string {
  const parts = text.split(/\n+/).map((p) => p.trim().replace(/\s+/g, " ")).filter(Boolean);
  const once = [...new Set(parts)].join(" ");
  return once.length > 200 ? `${once.slice(0, 200)}...` : once;
}

/**
 * Whether the file ends before its format's own record of its end: a JPEG without its end-of-image marker or a PNG
 * without its IEND chunk near the end, a WebP shorter than its RIFF header says, a TIFF whose first directory runs
 * past the end (libtiff writes it after the pixels), a HEIF/AVIF box running past the end. False when that record
 * shows the file whole, null for a format that keeps none (or not within the edges).
 */
function endsEarly({ head, tail, size }: FileEdges): boolean | null {
  const at = (i: number, text: string) => [...text].every((c, k) => head[i + k] === c.charCodeAt(0));
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const inTail = (...seq: number[]) => tail.some((_, i) => seq.every((b, k) => tail[i + k] === b));
  if (head[0] === 0xff && head[1] === 0xd8) return !inTail(0xff, 0xd9);
  if (at(0, "\x89PNG")) return !inTail(0x49, 0x45, 0x4e, 0x44);
  if (head.length >= 12 && at(0, "RIFF") && at(8, "WEBP")) return size < view.getUint32(4, true) + 8;
  if (head.length >= 8 && (at(0, "II*\0") || at(0, "MM\0*"))) return tiffDirectoryPastEnd({ head, tail, size }) || null;
  if (head.length >= 12 && at(4, "ftyp") && /^(avi[fs]|hei[cxms]|hev[cx]|mif1|msf1)$/.test(String.fromCharCode(...head.subarray(8, 12)))) {
    return boxesRunPastEnd(view, size);
  }
  return null;
}

// Bytes per value of each TIFF field type (1 BYTE ... 12 DOUBLE, 13 IFD).
const TIFF_TYPE_BYTES = [0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4];
// StripOffsets/StripByteCounts and TileOffsets/TileByteCounts: where the pixels lie.
const TIFF_PIXEL_RUNS: [number, number][] = [[273, 279], [324, 325]];

/**
 * Whether a TIFF's first directory, a value it points to or the pixels it lists run past the end, as far as the
 * edges hold them. False says only that nothing seen runs past the end.
 */
function tiffDirectoryPastEnd({ head, tail, size }: FileEdges): boolean {
  const little = head[0] === 0x49;
  const tailStart = size - tail.length;
  // A reader of `length` bytes at file offset `at`, from whichever edge holds them all.
  const bytesAt = (at: number, length: number): DataView | null => {
    const [bytes, i] = at + length <= head.length ? [head, at] : at >= tailStart && at + length <= size ? [tail, at - tailStart] : [null, 0];
    return bytes && new DataView(bytes.buffer, bytes.byteOffset + i, length);
  };
  const offset = bytesAt(4, 4)!.getUint32(0, little);
  if (offset + 2 > size) return true;
  const count = bytesAt(offset, 2)?.getUint16(0, little);
  if (count === undefined) return false;
  if (offset + 2 + 12 * count + 4 > size) return true;
  const entries = bytesAt(offset + 2, 12 * count);
  if (!entries) return false;
  const values = new Map<number, number[] | null>();
  for (let e = 0; e < count * 12; e += 12) {
    const [tag, type, n] = [entries.getUint16(e, little), entries.getUint16(e + 2, little), entries.getUint32(e + 4, little)];
    const length = n * (TIFF_TYPE_BYTES[type] ?? 1);
    const inline = length <= 4;
    const at = inline ? offset + 2 + e + 8 : entries.getUint32(e + 8, little);
    if (at + length > size) return true;
    // Offsets and byte counts of the pixel runs are SHORT or LONG.
    if (TIFF_PIXEL_RUNS.some((pair) => pair.includes(tag)) && (type === 3 || type === 4)) {
      const data = bytesAt(at, length);
      values.set(tag, data && Array.from({ length: n }, (_, k) => (type === 3 ? data.getUint16(2 * k, little) : data.getUint32(4 * k, little))));
    }
  }
  return TIFF_PIXEL_RUNS.some(([offsets, lengths]) => {
    const [o, l] = [values.get(offsets), values.get(lengths)];
    return !!o && !!l && o.some((start, k) => start + (l[k] ?? 0) > size);
  });
}

/** Whether one of an ISO media file's top-level boxes, walked from the start within `head`, ends past `size`. */
function boxesRunPastEnd(head: DataView, size: number): boolean | null {
  for (let at = 0; at + 16 <= head.byteLength; ) {
    const declared = head.getUint32(at);
    // 1: a 64-bit size follows the type; 0: the box runs to the end of the file, wherever that is.
    const length = declared === 1 ? Number(head.getBigUint64(at + 8)) : declared;
    if (declared === 0 || length < 8) return null;
    if (at + length > size) return true;
    if (at + length === size) return false;
    at += length;
  }
  return null;
}
