// Where the JPEGs of a Canon CR3 lie. CR3 is an ISO media file (ftyp "crx "): the moov box holds Canon's uuid box
// (85c0b687-...) with the metadata as small TIFFs (CMT1 is IFD0, CMT2 the EXIF directory) and a 160x120 thumbnail
// (THMB); a top-level uuid box (eaf42b5e-...) holds a PRVW box with the camera's 1620x1080 JPEG preview. The
// sensor data (and a full-size JPEG, as a video track's sample) sit in mdat, after them all. Layout as exiftool's
// QuickTime.pm and Canon.pm read it.
import type { ByteSource } from "./byte-source.ts";
import { exifOrientation, fillExif, parseExif } from "./exif.ts";
import type { Candidate, RawLayout } from "./raw-preview.ts";

const CANON_METADATA_UUID = "85c0b687820f11e08111f4ce462b6a48";
const CANON_PREVIEW_UUID = "eaf42b5e1c984b88b9fbb7dc406e4d16";
// CMT1 and CMT2 are a few kilobytes; a larger one is not Canon's.
const MAX_METADATA_BYTES = 1024 * 1024;
// A CR3 has a dozen boxes where we look; the cap stops a file of millions of empty ones.
const MAX_BOXES = 1024;

/** Whether `head` (the first 12 bytes) opens a CR3. */
export function isCr3(head: Uint8Array): boolean {
  return head.length >= 12 && ascii(head.subarray(4, 12)) === "ftypcrx ";
}

const ascii = (b: Uint8Array) => String.fromCharCode(...b);
const hex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at);

interface Box {
  type: string;
  /** Where its payload starts and where the box ends, in the file. */
  start: number;
  end: number;
}

/** The boxes from `from` to `to`; `cut` when one runs past the end of the file. */
async function boxes(file: ByteSource, from: number, to: number): Promise<{ list: Box[]; cut: boolean }> {
  const list: Box[] = [];
  for (let at = from; at + 8 <= to && list.length < MAX_BOXES; ) {
    const head = await file.read(at, 16);
    if (head.length < 8) return { list, cut: true };
    const declared = u32(head, 0);
    // 1: a 64-bit size follows the type; 0: the box runs to the end of its parent.
    const large = declared === 1;
    if (large && head.length < 16) return { list, cut: true };
    const size = large ? Number(new DataView(head.buffer, head.byteOffset).getBigUint64(8)) : declared === 0 ? to - at : declared;
    const headerBytes = large ? 16 : 8;
    if (size < headerBytes) break;
    const box = { type: ascii(head.subarray(4, 8)), start: at + headerBytes, end: at + size };
    if (box.end > file.size) return { list: [...list, { ...box, end: file.size }], cut: true };
    list.push(box);
    at = box.end;
  }
  return { list, cut: false };
}

/** The uuid of a uuid box, as hex. */
async function uuidOf(file: ByteSource, box: Box): Promise<string> {
  return box.type === "uuid" ? hex(await file.read(box.start, 16)) : "";
}

export async function cr3Layout(file: ByteSource): Promise<RawLayout> {
  const top = await boxes(file, 0, file.size);
  let cut = top.cut;
  const candidates: Candidate[] = [];
  let ifd0: Uint8Array | undefined;
  let exifIfd: Uint8Array | undefined;
  const metadata = async (box: Box) => (box.end - box.start <= MAX_METADATA_BYTES ? file.read(box.start, box.end - box.start) : undefined);

  for (const box of top.list) {
    if (box.type === "moov") {
      const moov = await boxes(file, box.start, box.end);
      cut ||= moov.cut;
      for (const child of moov.list) {
        if ((await uuidOf(file, child)) !== CANON_METADATA_UUID) continue;
        const canon = await boxes(file, child.start + 16, child.end);
        cut ||= canon.cut;
        for (const item of canon.list) {
          if (item.type === "CMT1") ifd0 = await metadata(item);
          else if (item.type === "CMT2") exifIfd = await metadata(item);
          else if (item.type === "THMB") {
            // version and flags (4), width and height (2 + 2), the JPEG's length (4), 4 more; then the JPEG.
            const head = await file.read(item.start, 16);
            if (head.length === 16) candidates.push({ offset: item.start + 16, length: u32(head, 8) });
          }
        }
      }
    } else if ((await uuidOf(file, box)) === CANON_PREVIEW_UUID) {
      // After the uuid, 8 bytes, then the PRVW box: 4 bytes, 1, width, height, 1 (2 each), the JPEG's length (4).
      const prvw = (await boxes(file, box.start + 24, box.end)).list.find((b) => b.type === "PRVW");
      if (!prvw) continue;
      const head = await file.read(prvw.start, 16);
      if (head.length === 16) candidates.push({ offset: prvw.start + 16, length: u32(head, 12) });
    }
  }
  return {
    candidates,
    orientation: exifOrientation(ifd0),
    exif: fillExif(parseExif(exifIfd), parseExif(ifd0)),
    cut,
  };
}
