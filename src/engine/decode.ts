// File bytes -> 8-bit interleaved RGB with EXIF orientation applied, as Pillow's `convert("RGB")` would see it,
// shrunk on load when the consumer needs far fewer pixels than a camera JPEG holds.
import { open, stat } from "node:fs/promises";
import type { Metadata } from "sharp";
import { parseExif } from "./exif.ts";
import { loadSharp } from "./native.ts";
import { ImageError, type DecodedImage, type FailureReason } from "./types.ts";

export interface DecodeOptions {
  /** Shrink-on-load hint: the smallest short side the consumer needs (e.g. 224). */
  targetShortSide?: number;
  /** Images with more pixels than this are refused from their header. Default 100 million. */
  maxPixels?: number;
}

export const DEFAULT_MAX_PIXELS = 100_000_000;

const JPEG_SHRINK_FACTORS = [8, 4, 2];

/**
 * sharp's names for the formats of scan.ts's IMAGE_EXTENSIONS (AVIF and HEIC are both "heif"). libvips also reads
 * SVG, PDF and more; those are refused like any other non-image, whatever the file is called: an uploaded SVG can
 * carry script, and would be served back as a page.
 */
const INDEXED_FORMATS: ReadonlySet<string> = new Set(["jpeg", "png", "webp", "gif", "tiff", "heif"]);

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
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_PIXELS;
  const sharp = loadSharp();
  const failure = async (err: unknown) => asImageError(err, label, typeof input === "string" ? await edgesOf(input) : input);

  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw await failure(err);
  }
  if (!INDEXED_FORMATS.has(meta.format ?? "")) {
    throw new ImageError("not-an-image", `${label}: ${meta.format ?? "this"} is not an image format imgd indexes (JPEG, PNG, WebP, GIF, TIFF, AVIF, HEIC)`);
  }
  const width = meta.width ?? 0;
  const height = meta.height ?? 0;
  // Checked from the header, before any pixel is decoded: a small file can claim a huge canvas.
  if (width * height > maxPixels) {
    throw new ImageError(
      "too-many-pixels",
      `${label}: ${width}x${height} is ${width * height} pixels, more than the limit of ${maxPixels}`,
    );
  }

  // Pillow ignores embedded ICC profiles and so did CLIP's training data, so we keep pixel values as stored
  // (CMYK is still converted to sRGB, through libvips' generic CMYK profile).
  let pipeline = sharp(input, { failOn: "error", limitInputPixels: maxPixels, autoOrient: true, ignoreIcc: true });
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
  const oriented = meta.autoOrient ?? { width, height };
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

/** The size of the regular file at `path`; anything else (missing, a folder, a pipe) cannot be read as an image. */
async function fileSize(path: string): Promise<number> {
  let cause: string;
  try {
    const s = await stat(path);
    if (s.isFile()) return s.size;
    cause = s.isDirectory() ? "it is a directory" : "it is not a regular file";
  } catch (err) {
    cause = err instanceof Error ? err.message : String(err);
  }
  throw new ImageError("unreadable", `${path}: cannot read the file (${cause})`);
}

/** The first and last few KiB of a file: enough for `asImageError` to tell a truncated JPEG or PNG. */
export async function edgesOf(path: string): Promise<Uint8Array> {
  const handle = await open(path, "r").catch(() => null);
  if (!handle) return new Uint8Array(0);
  try {
    const size = (await handle.stat()).size;
    const head = Buffer.alloc(Math.min(size, 8));
    const tail = Buffer.alloc(Math.min(Math.max(size - head.length, 0), 4096));
    await handle.read(head, 0, head.length, 0);
    await handle.read(tail, 0, tail.length, size - tail.length);
    return Buffer.concat([head, tail]);
  } catch {
    return new Uint8Array(0);
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

export function asImageError(err: unknown, label: string, bytes: Uint8Array): ImageError {
  if (err instanceof ImageError) return err;
  const cause = ownMessage(err instanceof Error ? err.message : String(err));
  // libvips keeps one error buffer for all threads: the text can be empty ("Unknown error") or carry another
  // image's failure, so a file that visibly stops early is called truncated from its bytes, not from the text.
  const reason = endsEarly(bytes) ? "truncated" : (REASONS.find(([re]) => re.test(cause))?.[1] ?? "corrupt");
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

/** A JPEG without its end-of-image marker or a PNG without its IEND chunk near the end of the file. */
function endsEarly(bytes: Uint8Array): boolean {
  const tail = bytes.subarray(Math.max(0, bytes.length - 4096));
  const has = (...seq: number[]) => tail.some((_, i) => seq.every((b, k) => tail[i + k] === b));
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return !has(0xff, 0xd9);
  if (bytes[0] === 0x89 && bytes[1] === 0x50 && bytes[2] === 0x4e && bytes[3] === 0x47) return !has(0x49, 0x45, 0x4e, 0x44);
  return false;
}
