// The picture imgd takes from a camera RAW file. sharp's libvips has no RAW decoder, but DNG, CR2, NEF and ARW are
// TIFF containers that carry a JPEG the camera itself rendered (a full-size or large preview): we walk the TIFF
// directories for the embedded JPEGs, keep the largest that libjpeg can decode, and report IFD0's orientation, which
// applies to the preview (cameras store it unrotated). libvips alone would open such a file as a plain TIFF and find
// only the thumbnail of IFD0, or nothing.
import { extname } from "node:path";
import type { Sharp } from "sharp";
import { withByteSource, type ByteSource } from "./byte-source.ts";
import { parseExif } from "./exif.ts";
import { ImageError, type ExifInfo } from "./types.ts";

/** Lower-case extensions, without the dot, of the camera RAW files imgd indexes through their preview. */
export const RAW_EXTENSIONS: ReadonlySet<string> = new Set(["dng", "cr2", "nef", "arw"]);

export function isRawName(path: string): boolean {
  return RAW_EXTENSIONS.has(extname(path).slice(1).toLowerCase());
}

export const NO_PREVIEW = "RAW file without an embedded JPEG preview imgd can decode";

export interface RawPreview {
  /** A whole baseline or progressive JPEG stream. */
  jpeg: Uint8Array;
  /** Its size as stored, before `orientation`. */
  width: number;
  height: number;
  /** EXIF orientation 1-8 from IFD0. */
  orientation: number;
  /** Date and camera from the RAW's own IFD0 and EXIF directory. */
  exif: ExifInfo;
}

const TAG_ORIENTATION = 0x0112;
const TAG_COMPRESSION = 0x0103;
const TAG_STRIP_OFFSETS = 0x0111;
const TAG_STRIP_BYTE_COUNTS = 0x0117;
const TAG_TILE_OFFSETS = 0x0144;
const TAG_TILE_BYTE_COUNTS = 0x0145;
const TAG_SUB_IFDS = 0x014a;
const TAG_JPEG_OFFSET = 0x0201;
const TAG_JPEG_LENGTH = 0x0202;
const TAGS_READ = new Set([TAG_ORIENTATION, TAG_COMPRESSION, TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS, TAG_TILE_OFFSETS,
  TAG_TILE_BYTE_COUNTS, TAG_SUB_IFDS, TAG_JPEG_OFFSET, TAG_JPEG_LENGTH]);
// Old-style and new-style JPEG compression: a strip of either may be a whole JPEG stream (CR2's IFD0, DNG previews).
const JPEG_COMPRESSIONS = new Set([6, 7]);
// A real RAW has a handful of directories; the cap stops a crafted file whose pointers form a web.
const MAX_DIRECTORIES = 64;
// The date and camera sit in IFD0 and the EXIF directory, within the first kilobytes of every RAW format here.
const EXIF_HEAD_BYTES = 1024 * 1024;

/** The largest decodable JPEG preview of the RAW file at `source` (its path or its bytes); an ImageError if none. */
export async function readRawPreview(source: string | Uint8Array, label: string): Promise<RawPreview> {
  try {
    return await withByteSource(source, label, (file) => previewFrom(file, label));
  } catch (err) {
    if (err instanceof ImageError) throw err;
    // A pointer into the middle of a value, a count that reads past a directory: damage the walk did not foresee.
    throw new ImageError("corrupt", `${label}: the image data is corrupt (the RAW file's TIFF directories do not read: ${(err as Error).message})`);
  }
}

interface Candidate {
  offset: number;
  length: number;
}

async function previewFrom(file: ByteSource, label: string): Promise<RawPreview> {
  if (file.size === 0) throw new ImageError("empty-file", `${label}: the file is empty (0 bytes)`);
  const header = await file.read(0, 8);
  const order = header.length === 8 ? String.fromCharCode(header[0]!, header[1]!) : "";
  if (order !== "II" && order !== "MM") {
    throw new ImageError("not-an-image", `${label}: not a TIFF-based camera RAW file (DNG, CR2, NEF, ARW)`);
  }
  const little = order === "II";
  const u16 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint16(at, little);
  const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, little);
  if (u16(header, 2) !== 42) throw new ImageError("not-an-image", `${label}: not a TIFF-based camera RAW file (DNG, CR2, NEF, ARW)`);

  /** The SHORT or LONG values of an entry (at `entry` within `ifd`), read from wherever they sit. */
  const values = async (ifd: Uint8Array, entry: number): Promise<number[]> => {
    const [type, count] = [u16(ifd, entry + 2), u32(ifd, entry + 4)];
    const width = type === 3 ? 2 : type === 4 || type === 13 ? 4 : 0;
    if (width === 0 || count === 0 || count > 4096) return [];
    const data = width * count <= 4 ? ifd.subarray(entry + 8, entry + 12) : await file.read(u32(ifd, entry + 8), width * count);
    if (data.length < width * count) return [];
    return Array.from({ length: count }, (_, k) => (width === 2 ? u16(data, 2 * k) : u32(data, 4 * k)));
  };

  const candidates: Candidate[] = [];
  let orientation = 1;
  let cut = false;
  const seen = new Set<number>();
  const queue = [u32(header, 4)];
  for (let first = true; queue.length > 0 && seen.size < MAX_DIRECTORIES; first = false) {
    const at = queue.shift()!;
    if (at < 8 || seen.has(at)) continue;
    seen.add(at);
    // A directory past the end is the mark of a file cut short (libtiff writes them after the pixels).
    if (at + 2 > file.size) {
      cut = true;
      continue;
    }
    const count = u16(await file.read(at, 2), 0);
    const ifd = await file.read(at + 2, 12 * count + 4);
    if (ifd.length < 12 * count) {
      cut = true;
      continue;
    }
    const tags = new Map<number, number[]>();
    for (let e = 0; e < 12 * count; e += 12) {
      if (TAGS_READ.has(u16(ifd, e))) tags.set(u16(ifd, e), await values(ifd, e));
    }
    if (ifd.length === 12 * count + 4) queue.push(u32(ifd, 12 * count));
    queue.push(...(tags.get(TAG_SUB_IFDS) ?? []));
    if (first) orientation = tags.get(TAG_ORIENTATION)?.[0] ?? 1;

    const [jpegOffset, jpegLength] = [tags.get(TAG_JPEG_OFFSET)?.[0], tags.get(TAG_JPEG_LENGTH)?.[0]];
    if (jpegOffset !== undefined && jpegLength !== undefined) candidates.push({ offset: jpegOffset, length: jpegLength });
    // A JPEG-compressed image in one strip or tile is one JPEG stream; in several, each is a piece of the picture.
    if (JPEG_COMPRESSIONS.has(tags.get(TAG_COMPRESSION)?.[0] ?? 0)) {
      for (const [offsets, lengths] of [[TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS], [TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS]] as const) {
        const [o, l] = [tags.get(offsets), tags.get(lengths)];
        if (o?.length === 1 && l?.length === 1) candidates.push({ offset: o[0]!, length: l[0]! });
      }
    }
  }

  let best: (Candidate & { width: number; height: number }) | null = null;
  for (const c of candidates) {
    if (c.length < 4) continue;
    if (c.offset + c.length > file.size) {
      cut = true;
      continue;
    }
    const frame = await jpegFrame(file, c);
    if (frame && (!best || frame.width * frame.height > best.width * best.height)) best = { ...c, ...frame };
  }
  if (!best) {
    if (cut) throw new ImageError("truncated", `${label}: the image data ends early (truncated file): a directory or JPEG preview of the RAW file runs past its end`);
    throw new ImageError("not-an-image", `${label}: ${NO_PREVIEW}`);
  }
  const head = await file.read(0, EXIF_HEAD_BYTES);
  return {
    jpeg: await file.read(best.offset, best.length),
    width: best.width,
    height: best.height,
    orientation: orientation >= 1 && orientation <= 8 ? orientation : 1,
    exif: parseExif(head),
  };
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
