// The picture imgd takes from a camera RAW file. sharp's libvips has no RAW decoder, but every RAW format carries a
// JPEG the camera itself rendered (a full-size or large preview): we find the embedded JPEGs (raw-tiff.ts for the
// TIFF-based formats, raw-cr3.ts, raw-raf.ts), keep the largest that libjpeg can decode, and report the RAW's
// orientation, which applies to the preview (cameras store it unrotated). libvips alone would open a TIFF-based RAW
// as a plain TIFF and find only the thumbnail of IFD0, or nothing.
import { extname } from "node:path";
import type { Sharp } from "sharp";
import { withByteSource, type ByteSource } from "./byte-source.ts";
import { exifOrientation, fillExif, parseExif } from "./exif.ts";
import { cr3Layout, isCr3 } from "./raw-cr3.ts";
import { isRaf, rafLayout } from "./raw-raf.ts";
import { isTiffRaw, tiffLayout } from "./raw-tiff.ts";
import { ImageError, type ExifInfo } from "./types.ts";

/** Lower-case extensions, without the dot, of the camera RAW files imgd indexes through their preview. */
export const RAW_EXTENSIONS: ReadonlySet<string> = new Set(["dng", "cr2", "cr3", "nef", "arw", "raf", "rw2", "orf"]);

export function isRawName(path: string): boolean {
  return RAW_EXTENSIONS.has(extname(path).slice(1).toLowerCase());
}

export const NO_PREVIEW = "RAW file without an embedded JPEG preview imgd can decode";

/**
 * The most of a file imgd reads as one embedded preview. A camera's full-size JPEG is a few MB to some 30 MB (a
 * 100 MP sensor at top quality); a length field that says more is damaged, and must not make imgd read gigabytes.
 */
export const MAX_PREVIEW_BYTES = 64 * 1024 * 1024;

export interface RawPreview {
  /** A whole baseline or progressive JPEG stream. */
  jpeg: Uint8Array;
  /** Its size as stored, before `orientation`. */
  width: number;
  height: number;
  /** EXIF orientation 1-8: the RAW's own, or where only the preview holds one (RAF), the preview's. */
  orientation: number;
  /** Date and camera from the RAW's own directories, and where they lack them, from the preview's EXIF. */
  exif: ExifInfo;
}

/** A JPEG stream's place in the file. */
export interface Candidate {
  offset: number;
  length: number;
}

/** What a format's reader finds in a RAW file. */
export interface RawLayout {
  /** Embedded JPEG streams, of any kind (imgd keeps the largest it can decode). */
  candidates: Candidate[];
  /** The RAW's orientation, null where it keeps none of its own. */
  orientation: number | null;
  exif: ExifInfo;
  /** Whether a directory or box ran past the end of the file. */
  cut: boolean;
}

/**
 * The largest decodable JPEG preview of the RAW file at `source` (its path or its bytes); an ImageError if it is a
 * RAW without one. Null when the file is no RAW container (a JPEG renamed .CR2, say): it is to be decoded as what
 * it is.
 */
export async function readRawPreview(source: string | Uint8Array, label: string): Promise<RawPreview | null> {
  try {
    return await withByteSource(source, label, (file) => previewFrom(file, label));
  } catch (err) {
    if (err instanceof ImageError) throw err;
    // A pointer into the middle of a value, a count that reads past a directory: damage the walk did not foresee.
    throw new ImageError("corrupt", `${label}: the image data is corrupt (the RAW file's directories do not read: ${(err as Error).message})`);
  }
}

async function previewFrom(file: ByteSource, label: string): Promise<RawPreview | null> {
  if (file.size === 0) throw new ImageError("empty-file", `${label}: the file is empty (0 bytes)`);
  const head = await file.read(0, 16);
  const layout = isTiffRaw(head) ? await tiffLayout(file) : isCr3(head) ? await cr3Layout(file) : isRaf(head) ? await rafLayout(file) : null;
  if (!layout) return null;
  let oversized: Candidate | null = null;
  let best: (Candidate & { width: number; height: number }) | null = null;
  const area = (f: { width: number; height: number } | null) => (f ? f.width * f.height : 0);
  let cut = layout.cut;
  // The largest frame among the JPEGs that run past the end (an interrupted copy), as far as their headers read.
  let cutArea = 0;
  for (const c of layout.candidates) {
    if (c.length < 4) continue;
    if (c.offset + c.length > file.size) {
      cut = true;
      cutArea = Math.max(cutArea, area(await jpegFrame(file, { offset: c.offset, length: Math.max(0, file.size - c.offset) })));
      continue;
    }
    if (c.length > MAX_PREVIEW_BYTES) {
      oversized = c;
      continue;
    }
    const frame = await jpegFrame(file, c);
    if (frame && area(frame) > area(best)) best = { ...c, ...frame };
  }
  // Cut inside its largest preview, a RAW would show only its thumbnail: it is a truncated file, not that picture.
  if (cut && (!best || cutArea > area(best))) {
    throw new ImageError("truncated", `${label}: the image data ends early (truncated file): a directory or JPEG preview of the RAW file runs past its end`);
  }
  if (!best) {
    if (oversized) {
      throw new ImageError("corrupt", `${label}: the image data is corrupt: the RAW file's embedded JPEG preview is said to be ${oversized.length} bytes long, more than the ${MAX_PREVIEW_BYTES} imgd reads of one`);
    }
    throw new ImageError("not-an-image", `${label}: ${NO_PREVIEW}`);
  }
  const jpeg = await file.read(best.offset, best.length);
  const own = jpegExif(jpeg);
  const orientation = layout.orientation ?? exifOrientation(own) ?? 1;
  return {
    jpeg,
    width: best.width,
    height: best.height,
    orientation: orientation >= 1 && orientation <= 8 ? orientation : 1,
    exif: fillExif(layout.exif, parseExif(own)),
  };
}

/** The EXIF block (APP1 "Exif\0\0") of a JPEG stream, if it has one before its frame. */
function jpegExif(jpeg: Uint8Array): Uint8Array | undefined {
  for (let at = 2; at + 4 <= jpeg.length; ) {
    if (jpeg[at] !== 0xff) return undefined;
    const marker = jpeg[at + 1]!;
    if (marker === 0xff) {
      at++;
      continue;
    }
    if (marker === 0xda || marker === 0xd9 || FRAME_MARKERS.has(marker)) return undefined;
    const length = (jpeg[at + 2]! << 8) | jpeg[at + 3]!;
    if (length < 2) return undefined;
    const payload = jpeg.subarray(at + 4, at + 2 + length);
    if (marker === 0xe1 && String.fromCharCode(...payload.subarray(0, 6)) === "Exif\0\0") return payload;
    at += 2 + length;
  }
  return undefined;
}

// SOF0 baseline, SOF1 extended sequential, SOF2 progressive: the Huffman-coded frames libjpeg decodes. SOF3 is the
// lossless JPEG that RAW sensor data is stored in, which libjpeg (and so sharp) cannot decode; the rest are
// arithmetic-coded or hierarchical, which no camera preview uses.
const DECODABLE_FRAMES = new Set([0xc0, 0xc1, 0xc2]);
const FRAME_MARKERS = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

/**
 * The size of the JPEG stream at `c` if it is one libjpeg decodes: it starts with SOI, defines its quantisation tables
 * (an abbreviated stream needs tables from elsewhere) and its frame is baseline or progressive. Null otherwise.
 */
async function jpegFrame(file: ByteSource, c: Candidate): Promise<{ width: number; height: number } | null> {
  const end = c.offset + c.length;
  const soi = await file.read(c.offset, 2);
  if (soi[0] !== 0xff || soi[1] !== 0xd8) return null;
  let tables = false;
  for (let at = c.offset + 2, steps = 0; at + 4 <= end && steps < 256; steps++) {
    const seg = await file.read(at, 4);
    if (seg.length < 4 || seg[0] !== 0xff) return null;
    const marker = seg[1]!;
    // Fill bytes may pad before a marker.
    if (marker === 0xff) {
      at++;
      continue;
    }
    const length = (seg[2]! << 8) | seg[3]!;
    if (marker === 0xdb) tables = true;
    if (FRAME_MARKERS.has(marker)) {
      if (!DECODABLE_FRAMES.has(marker) || !tables) return null;
      const sof = await file.read(at + 4, 5);
      if (sof.length < 5) return null;
      const height = (sof[1]! << 8) | sof[2]!;
      const width = (sof[3]! << 8) | sof[4]!;
      return width > 0 && height > 0 ? { width, height } : null;
    }
    if (marker === 0xda || marker === 0xd9 || length < 2) return null;
    at += 2 + length;
  }
  return null;
}

// EXIF orientation -> [rotation, flip, flop], as sharp applies them (mirroring first) to show the picture upright.
const ORIENTATION_OPS: Record<number, [number, boolean, boolean]> = {
  2: [0, false, true],
  3: [180, false, false],
  4: [0, true, false],
  5: [90, true, false],
  6: [90, false, false],
  7: [90, false, true],
  8: [270, false, false],
};

/** `pipeline` (opened with autoOrient off) turned upright by the RAW's orientation rather than the preview's own. */
export function orientPreview(pipeline: Sharp, orientation: number): Sharp {
  const [rotation, flip, flop] = ORIENTATION_OPS[orientation] ?? [0, false, false];
  if (rotation) pipeline = pipeline.rotate(rotation);
  if (flip) pipeline = pipeline.flip();
  if (flop) pipeline = pipeline.flop();
  return pipeline;
}

/** A picture's size as displayed once turned by `orientation`. */
export function uprightSize({ width, height, orientation }: { width: number; height: number; orientation: number }) {
  return orientation >= 5 ? { width: height, height: width } : { width, height };
}
