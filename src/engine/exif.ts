// The three EXIF fields the catalog keeps, read from the raw EXIF block sharp hands back (`metadata().exif`).
// exifr only parses asynchronously, and these fields need no more than a TIFF IFD walk, so we read them here.
import type { ExifInfo } from "./types.ts";

const TAG_MAKE = 0x010f;
const TAG_MODEL = 0x0110;
const TAG_DATETIME = 0x0132;
const TAG_EXIF_IFD = 0x8769;
const TAG_DATETIME_ORIGINAL = 0x9003;
const TAG_ORIENTATION = 0x0112;
const TYPE_SHORT = 3;
// TIFF's 42, and the magic numbers of the camera RAW files that are TIFF in all but that: Panasonic's RW2 (0x55) and
// Olympus' ORF ("RO", "RS"). Their IFD0 and EXIF directory read as any TIFF's.
const TIFF_MAGICS = new Set([42, 0x55, 0x4f52, 0x5352]);
const TYPE_ASCII = 2;
const TYPE_LONG = 4;

const NONE: ExifInfo = { takenAt: null, cameraMake: null, cameraModel: null };

interface Tiff {
  view: DataView;
  little: boolean;
}

type Entries = Map<number, { type: number; count: number; valueOffset: number }>;

function readIfd(tiff: Tiff, at: number): Entries {
  const { view, little } = tiff;
  const entries: Entries = new Map();
  if (at < 8 || at + 2 > view.byteLength) return entries;
  const n = view.getUint16(at, little);
  for (let i = 0; i < n; i++) {
    const e = at + 2 + i * 12;
    if (e + 12 > view.byteLength) break;
    entries.set(view.getUint16(e, little), {
      type: view.getUint16(e + 2, little),
      count: view.getUint32(e + 4, little),
      // Values of 4 bytes or fewer sit inside the entry itself.
      valueOffset: e + 8,
    });
  }
  return entries;
}

function readAscii(tiff: Tiff, entries: Entries, tag: number): string | null {
  const entry = entries.get(tag);
  if (!entry || entry.type !== TYPE_ASCII || entry.count === 0) return null;
  const { view, little } = tiff;
  const start = entry.count <= 4 ? entry.valueOffset : view.getUint32(entry.valueOffset, little);
  const end = start + entry.count;
  if (end > view.byteLength) return null;
  let s = "";
  for (let i = start; i < end; i++) {
    const c = view.getUint8(i);
    if (c === 0) break;
    s += String.fromCharCode(c);
  }
  s = s.trim();
  return s.length > 0 ? s : null;
}

/**
 * EXIF "YYYY:MM:DD HH:MM:SS" -> "YYYY-MM-DDTHH:MM:SS"; cameras write all-zero or blank dates when unset. A day the
 * month does not have (Feb 31) is no date: the catalog's TIMESTAMP refuses it, which failed the whole run.
 */
function exifDate(s: string | null): string | null {
  const m = s?.match(/^(\d{4})[:\-](\d{2})[:\-](\d{2})[ T](\d{2}):(\d{2}):(\d{2})/);
  if (!m) return null;
  const [y, mo, d, h, mi, se] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  if (y === 0 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo)) return null;
  if (h > 23 || mi > 59 || se > 60) return null;
  // A leap second (:60) is a real moment that TIMESTAMP cannot hold: kept as the second before it.
  return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${se === 60 ? "59" : m[6]}`;
}

function daysIn(year: number, month: number): number {
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]!;
}

function tiffStart(bytes: Uint8Array): number {
  // libvips hands back the APP1 payload, which starts with "Exif\0\0"; bare TIFF blocks are accepted too.
  if (bytes.length >= 6 && bytes[0] === 0x45 && bytes[1] === 0x78 && bytes[2] === 0x69 && bytes[3] === 0x66) return 6;
  return 0;
}

/** The TIFF block in `buf` and its IFD0, or null if `buf` holds none. */
function openTiff(buf: Uint8Array | undefined): { tiff: Tiff; ifd0: Entries } | null {
  if (!buf || buf.length < 14) return null;
  const base = tiffStart(buf);
  const view = new DataView(buf.buffer, buf.byteOffset + base, buf.byteLength - base);
  const order = view.getUint16(0, false);
  if (order !== 0x4949 && order !== 0x4d4d) return null;
  const little = order === 0x4949;
  if (!TIFF_MAGICS.has(view.getUint16(2, little))) return null;
  const tiff: Tiff = { view, little };
  return { tiff, ifd0: readIfd(tiff, view.getUint32(4, little)) };
}

export function parseExif(buf: Uint8Array | undefined): ExifInfo {
  try {
    const opened = openTiff(buf);
    if (!opened) return { ...NONE };
    const { tiff, ifd0 } = opened;
    const { view, little } = tiff;
    // Canon's CR3 keeps its EXIF directory as a TIFF of its own, whose IFD0 it is (CMT2).
    let original = exifDate(readAscii(tiff, ifd0, TAG_DATETIME_ORIGINAL));
    const exifPointer = ifd0.get(TAG_EXIF_IFD);
    if (exifPointer && exifPointer.type === TYPE_LONG) {
      const sub = readIfd(tiff, view.getUint32(exifPointer.valueOffset, little));
      original = exifDate(readAscii(tiff, sub, TAG_DATETIME_ORIGINAL)) ?? original;
    }
    return {
      takenAt: original ?? exifDate(readAscii(tiff, ifd0, TAG_DATETIME)),
      cameraMake: readAscii(tiff, ifd0, TAG_MAKE),
      cameraModel: readAscii(tiff, ifd0, TAG_MODEL),
    };
  } catch {
    return { ...NONE };
  }
}

/** IFD0's orientation (1-8) in the TIFF or APP1 EXIF block `buf`, null if it has none. */
export function exifOrientation(buf: Uint8Array | undefined): number | null {
  try {
    const opened = openTiff(buf);
    const entry = opened?.ifd0.get(TAG_ORIENTATION);
    if (!opened || !entry || entry.type !== TYPE_SHORT) return null;
    const value = opened.tiff.view.getUint16(entry.valueOffset, opened.tiff.little);
    return value >= 1 && value <= 8 ? value : null;
  } catch {
    return null;
  }
}

/** `first`, its unknown fields taken from `second`. */
export function fillExif(first: ExifInfo, second: ExifInfo): ExifInfo {
  return {
    takenAt: first.takenAt ?? second.takenAt,
    cameraMake: first.cameraMake ?? second.cameraMake,
    cameraModel: first.cameraModel ?? second.cameraModel,
  };
}
