// Where the JPEG of a Fujifilm RAF lies: its header ("FUJIFILMCCD-RAW ", format version, camera id and model, RAF
// version) gives the JPEG's offset and length as big-endian numbers at 0x54 and 0x58. The JPEG is the camera's own,
// with the photo's EXIF (orientation, date, camera) inside it; the RAF's own directories hold sensor geometry only.
// Layout as exiftool's FujiFilm.pm reads it.
import type { ByteSource } from "./byte-source.ts";
import { parseExif } from "./exif.ts";
import type { RawLayout } from "./raw-preview.ts";

const MAGIC = "FUJIFILMCCD-RAW ";
const HEADER_BYTES = 0x5c;

/** Whether `head` (the first 16 bytes) opens a RAF. */
export function isRaf(head: Uint8Array): boolean {
  return head.length >= 16 && String.fromCharCode(...head.subarray(0, 16)) === MAGIC;
}

export async function rafLayout(file: ByteSource): Promise<RawLayout> {
  const header = await file.read(0, HEADER_BYTES);
  // Orientation and EXIF are the JPEG's own.
  const none = { orientation: null, exif: parseExif(undefined) };
  if (header.length < HEADER_BYTES) return { candidates: [], cut: true, ...none };
  const view = new DataView(header.buffer, header.byteOffset);
  return { candidates: [{ offset: view.getUint32(0x54), length: view.getUint32(0x58) }], cut: false, ...none };
}
