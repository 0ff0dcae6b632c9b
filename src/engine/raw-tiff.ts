// Where the JPEGs of a TIFF-based camera RAW file lie. DNG, CR2, NEF and ARW are TIFF; Panasonic's RW2 and Olympus'
// ORF are TIFF with magic numbers of their own. We walk the directories for embedded JPEGs: strips and tiles of JPEG
// compression, JPEGInterchangeFormat (0x0201/0x0202), RW2's JpgFromRaw (0x002e, a whole JPEG with its own EXIF), and
// the preview ORF keeps in its maker note's CameraSettings. IFD0's orientation applies to them all.
import type { ByteSource } from "./byte-source.ts";
import { parseExif } from "./exif.ts";
import type { Candidate, RawLayout } from "./raw-preview.ts";

const TAG_ORIENTATION = 0x0112;
const TAG_COMPRESSION = 0x0103;
const TAG_STRIP_OFFSETS = 0x0111;
const TAG_STRIP_BYTE_COUNTS = 0x0117;
const TAG_TILE_OFFSETS = 0x0144;
const TAG_TILE_BYTE_COUNTS = 0x0145;
const TAG_SUB_IFDS = 0x014a;
const TAG_JPEG_OFFSET = 0x0201;
const TAG_JPEG_LENGTH = 0x0202;
const TAG_EXIF_IFD = 0x8769;
// Panasonic RW2's IFD0: the camera's full-size JPEG, as one UNDEFINED value.
const TAG_RW2_JPG_FROM_RAW = 0x002e;
const TAG_MAKER_NOTE = 0x927c;
// Olympus maker note: CameraSettings, a directory holding PreviewImageStart/Length (offsets from the maker note).
const TAG_OLYMPUS_CAMERA_SETTINGS = 0x2020;
const TAG_OLYMPUS_PREVIEW_START = 0x0101;
const TAG_OLYMPUS_PREVIEW_LENGTH = 0x0102;
// Old-style and new-style JPEG compression: a strip of either may be a whole JPEG stream (CR2's IFD0, DNG previews).
const JPEG_COMPRESSIONS = new Set([6, 7]);
// A real RAW has a handful of directories; the cap stops a crafted file whose pointers form a web.
const MAX_DIRECTORIES = 64;
// The date and camera sit in IFD0 and the EXIF directory, within the first kilobytes of every format here.
const EXIF_HEAD_BYTES = 1024 * 1024;

const MAGIC_TIFF = 42;
const MAGIC_RW2 = 0x55;
const MAGICS_ORF = new Set([0x4f52, 0x5352]);

/** Whether `head` (the first 4 bytes) opens a TIFF, RW2 or ORF file. */
export function isTiffRaw(head: Uint8Array): boolean {
  const order = String.fromCharCode(head[0] ?? 0, head[1] ?? 0);
  if (head.length < 4 || (order !== "II" && order !== "MM")) return false;
  const magic = new DataView(head.buffer, head.byteOffset).getUint16(2, order === "II");
  return magic === MAGIC_TIFF || magic === MAGIC_RW2 || MAGICS_ORF.has(magic);
}

/** A directory entry: its type, count and the file offset of its value (inline, or where it points). */
interface Entry {
  type: number;
  count: number;
  valueAt: number;
  /** The entry's 4 value bytes read as one LONG: the pointer of an out-of-line value. */
  pointer: number;
}

/** Directory reading in one byte order. */
function tiffReader(file: ByteSource, little: boolean) {
  const u16 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint16(at, little);
  const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, little);
  const typeBytes = (type: number) => (type === 3 ? 2 : type === 4 || type === 13 ? 4 : 1);
  return {
    u16,
    u32,
    /**
     * The entries of the directory at `at`, null where it runs past the end; `next` is the next IFD's offset. Its
     * pointers count from `base` (a maker note's start, for some).
     */
    async directory(at: number, base = 0): Promise<{ entries: Map<number, Entry>; next: number | null } | null> {
      if (at + 2 > file.size) return null;
      const count = u16(await file.read(at, 2), 0);
      const ifd = await file.read(at + 2, 12 * count + 4);
      if (ifd.length < 12 * count) return null;
      const entries = new Map<number, Entry>();
      for (let e = 0; e < 12 * count; e += 12) {
        const [type, n] = [u16(ifd, e + 2), u32(ifd, e + 4)];
        const pointer = u32(ifd, e + 8);
        entries.set(u16(ifd, e), { type, count: n, pointer, valueAt: typeBytes(type) * n <= 4 ? at + 2 + e + 8 : base + pointer });
      }
      return { entries, next: ifd.length === 12 * count + 4 ? u32(ifd, 12 * count) : null };
    },
    /** The SHORT, LONG or IFD values of `entry` (at most 4096 of them), [] for any other type. */
    async values(entry: Entry | undefined): Promise<number[]> {
      if (!entry) return [];
      const width = entry.type === 3 ? 2 : entry.type === 4 || entry.type === 13 ? 4 : 0;
      if (width === 0 || entry.count === 0 || entry.count > 4096) return [];
      const data = await file.read(entry.valueAt, width * entry.count);
      if (data.length < width * entry.count) return [];
      return Array.from({ length: entry.count }, (_, k) => (width === 2 ? u16(data, 2 * k) : u32(data, 4 * k)));
    },
  };
}

/** The JPEGs, orientation and EXIF of the TIFF-based RAW at `file`, whose first bytes `isTiffRaw` took. */
export async function tiffLayout(file: ByteSource): Promise<RawLayout> {
  const header = await file.read(0, 8);
  const little = header[0] === 0x49;
  const tiff = tiffReader(file, little);
  if (header.length < 8) return { candidates: [], orientation: null, exif: parseExif(undefined), cut: true };

  const candidates: Candidate[] = [];
  let orientation: number | null = null;
  let cut = false;
  const seen = new Set<number>();
  const queue = [tiff.u32(header, 4)];
  for (let first = true; queue.length > 0 && seen.size < MAX_DIRECTORIES; first = false) {
    const at = queue.shift()!;
    if (at < 8 || seen.has(at)) continue;
    seen.add(at);
    // A directory past the end is the mark of a file cut short (libtiff writes them after the pixels).
    const dir = await tiff.directory(at);
    if (!dir) {
      cut = true;
      continue;
    }
    const { entries } = dir;
    const one = async (tag: number) => (await tiff.values(entries.get(tag)))[0];
    if (dir.next !== null) queue.push(dir.next);
    queue.push(...(await tiff.values(entries.get(TAG_SUB_IFDS))));
    if (first) {
      orientation = (await one(TAG_ORIENTATION)) ?? null;
      // The EXIF directory holds no image, but ORF's maker note, with its preview, hangs from it.
      const exifAt = await one(TAG_EXIF_IFD);
      if (exifAt !== undefined) {
        const exif = await tiff.directory(exifAt);
        const note = exif?.entries.get(TAG_MAKER_NOTE);
        const preview = note && (await olympusPreview(file, note, little));
        if (preview) candidates.push(preview);
      }
      const jpgFromRaw = entries.get(TAG_RW2_JPG_FROM_RAW);
      if (jpgFromRaw && jpgFromRaw.type === 7) candidates.push({ offset: jpgFromRaw.valueAt, length: jpgFromRaw.count });
    }

    const [jpegOffset, jpegLength] = [await one(TAG_JPEG_OFFSET), await one(TAG_JPEG_LENGTH)];
    if (jpegOffset !== undefined && jpegLength !== undefined) candidates.push({ offset: jpegOffset, length: jpegLength });
    // A JPEG-compressed image in one strip or tile is one JPEG stream; in several, each is a piece of the picture.
    if (JPEG_COMPRESSIONS.has((await one(TAG_COMPRESSION)) ?? 0)) {
      for (const [offsets, lengths] of [[TAG_STRIP_OFFSETS, TAG_STRIP_BYTE_COUNTS], [TAG_TILE_OFFSETS, TAG_TILE_BYTE_COUNTS]] as const) {
        const [o, l] = [await tiff.values(entries.get(offsets)), await tiff.values(entries.get(lengths))];
        if (o.length === 1 && l.length === 1) candidates.push({ offset: o[0]!, length: l[0]! });
      }
    }
  }
  return { candidates, orientation, exif: parseExif(await file.read(0, EXIF_HEAD_BYTES)), cut };
}

/**
 * The preview in an Olympus maker note (`note`, the EXIF directory's entry): a directory after a header that says
 * where its offsets count from. "OLYMPUS\0" + byte order (12 bytes) and "OM SYSTEM\0" (16) count from the maker note;
 * the old "OLYMP\0" (8) from the TIFF header. Its CameraSettings directory holds PreviewImageStart and Length.
 */
async function olympusPreview(file: ByteSource, note: Entry, tiffLittle: boolean): Promise<Candidate | null> {
  if (note.count < 16) return null;
  const head = await file.read(note.valueAt, 16);
  const text = (n: number) => String.fromCharCode(...head.subarray(0, n));
  const orderAt = (i: number) => (text(i + 2).endsWith("II") ? true : text(i + 2).endsWith("MM") ? false : null);
  const [base, start, little] =
    text(8) === "OLYMPUS\0" ? [note.valueAt, note.valueAt + 12, orderAt(8)]
    : text(10) === "OM SYSTEM\0" ? [note.valueAt, note.valueAt + 16, orderAt(12)]
    : text(6) === "OLYMP\0" ? [0, note.valueAt + 8, tiffLittle]
    : [0, 0, null];
  if (little === null) return null;
  const tiff = tiffReader(file, little);
  const settingsEntry = (await tiff.directory(start, base))?.entries.get(TAG_OLYMPUS_CAMERA_SETTINGS);
  if (!settingsEntry) return null;
  // An IFD pointer (type IFD or LONG), or the directory stored as the value itself (UNDEFINED): either way, there.
  const settings = await tiff.directory(base + settingsEntry.pointer, base);
  if (!settings) return null;
  const [offset, length] = [await tiff.values(settings.entries.get(TAG_OLYMPUS_PREVIEW_START)), await tiff.values(settings.entries.get(TAG_OLYMPUS_PREVIEW_LENGTH))];
  if (offset.length !== 1 || length.length !== 1) return null;
  return { offset: base + offset[0]!, length: length[0]! };
}
