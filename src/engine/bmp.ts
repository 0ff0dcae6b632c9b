// Windows BMP files to raw pixels. sharp's libvips has no BMP loader, yet old scanned-photo collections are BMP, and
// rclip (through Pillow) and Immich index them. This reads what Windows and OS/2 writers produce: the OS/2 core
// header, BITMAPINFOHEADER and its V2-V5 extensions; 1, 2, 4 and 8-bit palettes, RLE8 and RLE4; 16, 24 and 32-bit
// pixels with the default or BI_BITFIELDS masks; bottom-up and top-down rows. Its pixels go to sharp as raw input.
// Colour-space fields and ICC profiles of V4/V5 headers are ignored, as decode.ts ignores ICC in every format.
import { extname } from "node:path";
import { withByteSource, withFileSource, type ByteSource } from "./byte-source.ts";
import { ImageError, tooManyPixels } from "./types.ts";

/** Lower-case extensions, without the dot, of BMP files. */
export const BMP_EXTENSIONS: ReadonlySet<string> = new Set(["bmp", "dib"]);

/** 8-bit RGB or RGBA pixels, rows top to bottom: what sharp takes as `raw` input. */
export interface BmpPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
}

// The sizes of the DIB headers read here: OS/2 1.x core, Windows V3 (BITMAPINFOHEADER), V3 with RGB and RGBA masks
// (Adobe's V2 and V3), OS/2 2.x, V4 and V5.
const CORE_HEADER = 12;
const OS2_V2_HEADER = 64;
const HEADER_SIZES: ReadonlySet<number> = new Set([CORE_HEADER, 40, 52, 56, OS2_V2_HEADER, 108, 124]);
const FILE_HEADER = 14;

const BI_RGB = 0;
const BI_RLE8 = 1;
const BI_RLE4 = 2;
const BI_BITFIELDS = 3;
const BI_ALPHABITFIELDS = 6;
const UNSUPPORTED_COMPRESSIONS: Record<number, string> = { 4: "JPEG", 5: "PNG", 11: "CMYK", 12: "CMYK RLE8", 13: "CMYK RLE4" };

// Rows are read this many bytes at a time, so a file read from its path is never held whole beside its pixels.
const ROW_BAND_BYTES = 4 * 1024 * 1024;

/**
 * Whether a file is a BMP, from its first bytes (18 are enough) and its name: the "BM" signature, and a known DIB
 * header size after it unless the name says BMP ("BM" alone is two letters of text). A .bmp file that is some other
 * format inside is left to libvips, as Pillow too goes by content.
 */
export function isBmp(name: string, head: Uint8Array): boolean {
  if (head.length < 2 || head[0] !== 0x42 || head[1] !== 0x4d) return false;
  if (BMP_EXTENSIONS.has(extname(name).slice(1).toLowerCase())) return true;
  return head.length >= 18 && HEADER_SIZES.has(new DataView(head.buffer, head.byteOffset, 18).getUint32(14, true));
}

/** `isBmp` for a file given by its path or its bytes; `name` is its name (a path is its own). */
export async function isBmpInput(input: string | Uint8Array, name: string): Promise<boolean> {
  const head = input instanceof Uint8Array ? input.subarray(0, 18) : await withFileSource(input, input, (file) => file.read(0, 18));
  return isBmp(name, head);
}

/**
 * The pixels of the BMP at `source` (its path or its bytes). Its size is checked against `maxPixels` from the header,
 * before anything is allocated; a file that ends before its pixels is "truncated", a header that makes no sense "corrupt".
 */
export async function readBmp(source: string | Uint8Array, label: string, maxPixels: number): Promise<BmpPixels> {
  try {
    return await withByteSource(source, label, (file) => decodeBmp(file, label, maxPixels));
  } catch (err) {
    if (err instanceof ImageError) throw err;
    throw new ImageError("corrupt", `${label}: the image data is corrupt (the BMP does not read: ${(err as Error).message})`);
  }
}

interface Header {
  width: number;
  height: number;
  topDown: boolean;
  bitCount: number;
  compression: number;
  /** Where the pixel data starts. */
  offset: number;
  /** [red, green, blue, alpha] bit masks of 16, 24 and 32-bit pixels; alpha 0 when the file gives none. */
  masks: [number, number, number, number];
  /** RGB triples, for 1 to 8-bit pixels. */
  palette: Uint8Array;
}

async function decodeBmp(file: ByteSource, label: string, maxPixels: number): Promise<BmpPixels> {
  const header = await readHeader(file, label, maxPixels);
  const { compression } = header;
  if (compression === BI_RLE8 || compression === BI_RLE4) return decodeRle(file, header, label);
  return decodeRows(file, header, label);
}

const corrupt = (label: string, why: string) => new ImageError("corrupt", `${label}: the image data is corrupt (bad BMP header: ${why})`);
const truncated = (label: string, why: string) => new ImageError("truncated", `${label}: the image data ends early (truncated file): ${why}`);

async function readHeader(file: ByteSource, label: string, maxPixels: number): Promise<Header> {
  const head = await file.read(0, FILE_HEADER + 4);
  if (head.length < 2 || head[0] !== 0x42 || head[1] !== 0x4d) {
    throw new ImageError("not-an-image", `${label}: not an image in a format we can read (no BMP "BM" signature)`);
  }
  if (head.length < FILE_HEADER + 4) throw truncated(label, `the BMP file stops within its ${FILE_HEADER}-byte file header`);
  const headView = view(head);
  const headerSize = headView.getUint32(14, true);
  if (!HEADER_SIZES.has(headerSize)) throw corrupt(label, `a DIB header of ${headerSize} bytes, which no BMP writer produces`);
  const dib = await file.read(FILE_HEADER, headerSize);
  if (dib.length < headerSize) throw truncated(label, `the BMP file stops within its ${headerSize}-byte DIB header`);
  const h = view(dib);
  const core = headerSize === CORE_HEADER;
  const width = core ? h.getUint16(4, true) : h.getInt32(4, true);
  const rawHeight = core ? h.getUint16(6, true) : h.getInt32(8, true);
  const planes = h.getUint16(core ? 8 : 12, true);
  const bitCount = h.getUint16(core ? 10 : 14, true);
  const compression = core ? BI_RGB : h.getUint32(16, true);
  const colorsUsed = core ? 0 : h.getUint32(32, true);
  const height = Math.abs(rawHeight);

  if (width <= 0 || height <= 0) throw corrupt(label, `a size of ${width}x${rawHeight}`);
  if (planes !== 1) throw corrupt(label, `${planes} colour planes, where BMP has 1`);
  // Checked before any pixel is read or any buffer allocated: a 60-byte file can claim a canvas of 2^31 x 2^31.
  if (width * height > maxPixels) {
    throw tooManyPixels(label, width, height, maxPixels);
  }
  if (headerSize === OS2_V2_HEADER && (compression === 3 || compression === 4)) {
    throw new ImageError("not-an-image", `${label}: an OS/2 BMP coded with ${compression === 3 ? "Huffman 1D" : "RLE24"}, which imgd cannot decode`);
  }
  const unsupported = UNSUPPORTED_COMPRESSIONS[compression];
  if (unsupported) throw new ImageError("not-an-image", `${label}: a BMP with ${unsupported} compression, which imgd cannot decode`);
  const valid: Record<number, readonly number[]> = {
    [BI_RGB]: [1, 2, 4, 8, 16, 24, 32],
    [BI_RLE8]: [8],
    [BI_RLE4]: [4],
    [BI_BITFIELDS]: [16, 24, 32],
    [BI_ALPHABITFIELDS]: [16, 24, 32],
  };
  if (!(compression in valid)) throw corrupt(label, `unknown compression ${compression}`);
  if (!valid[compression]!.includes(bitCount)) throw corrupt(label, `${bitCount} bits per pixel with compression ${compression}`);
  // RLE codes rows from the bottom; a top-down RLE bitmap is not defined.
  if (rawHeight < 0 && (compression === BI_RLE8 || compression === BI_RLE4)) throw corrupt(label, "a top-down RLE bitmap");

  // Masks: in V2 and later headers at byte 40; after a V3 header when its compression says they follow.
  let at = FILE_HEADER + headerSize;
  let masks: Header["masks"] = bitCount === 16 ? [0x7c00, 0x03e0, 0x001f, 0] : [0xff0000, 0x00ff00, 0x0000ff, 0];
  if (compression === BI_BITFIELDS || compression === BI_ALPHABITFIELDS) {
    const count = compression === BI_ALPHABITFIELDS ? 4 : 3;
    // OS/2's 64-byte header has other fields at byte 40.
    const inHeader = headerSize >= 52 && headerSize !== OS2_V2_HEADER;
    let fields: DataView;
    if (inHeader) {
      fields = view(dib.subarray(40));
    } else {
      const follow = await file.read(at, 4 * count);
      if (follow.length < 4 * count) throw truncated(label, "the BMP file stops within its colour masks");
      fields = view(follow);
      at += 4 * count;
    }
    const alpha = (inHeader ? headerSize >= 56 : count === 4) ? fields.getUint32(12, true) : 0;
    masks = [fields.getUint32(0, true), fields.getUint32(4, true), fields.getUint32(8, true), alpha];
    const bits = 2 ** bitCount;
    for (const m of masks) {
      if (m !== 0 && (!contiguous(m) || m >= bits)) throw corrupt(label, `the colour mask 0x${m.toString(16)} for ${bitCount}-bit pixels`);
    }
  }

  let palette = new Uint8Array(0);
  if (bitCount <= 8) {
    const entryBytes = core ? 3 : 4;
    const declared = Math.min(colorsUsed || 2 ** bitCount, 2 ** bitCount);
    const stored = await file.read(at, declared * entryBytes);
    // Some writers list fewer entries than they declare before the pixels; those that are there are used.
    const offset = headView.getUint32(10, true);
    const room = offset > at ? Math.floor((offset - at) / entryBytes) : declared;
    const entries = Math.min(declared, room, Math.floor(stored.length / entryBytes));
    if (entries === 0) throw stored.length < entryBytes ? truncated(label, "the BMP file stops before its palette") : corrupt(label, "an empty palette");
    // Stored as blue, green, red (and a reserved byte); an index past the palette's end shows black.
    palette = new Uint8Array(3 * 2 ** bitCount);
    for (let i = 0; i < entries; i++) {
      palette[3 * i] = stored[i * entryBytes + 2]!;
      palette[3 * i + 1] = stored[i * entryBytes + 1]!;
      palette[3 * i + 2] = stored[i * entryBytes]!;
    }
    at += declared * entryBytes;
  }
  // An offset of 0 (old writers) means the pixels follow the palette.
  const stated = headView.getUint32(10, true);
  const offset = stated === 0 ? at : stated;
  if (offset < FILE_HEADER + headerSize) throw corrupt(label, `pixel data at byte ${offset}, inside the header`);
  return { width, height, topDown: rawHeight < 0, bitCount, compression, offset, masks, palette };
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function contiguous(mask: number): boolean {
  const low = mask >>> countTrailingZeros(mask);
  return (low & (low + 1)) === 0;
}

function countTrailingZeros(mask: number): number {
  return mask === 0 ? 0 : 31 - Math.clz32(mask & -mask);
}

/** Uncompressed rows: palette indexes, or pixels split by masks. */
async function decodeRows(file: ByteSource, header: Header, label: string): Promise<BmpPixels> {
  const { width, height, topDown, bitCount, offset, palette } = header;
  const rowBytes = Math.ceil((width * bitCount) / 8);
  const stride = 4 * Math.ceil(rowBytes / 4);
  // The last row's padding may be left off.
  const end = offset + stride * (height - 1) + rowBytes;
  if (end > file.size) {
    const rows = Math.max(0, Math.floor((file.size - offset) / stride));
    throw truncated(label, `the BMP file holds ${rows} of its ${height} rows (${file.size} bytes of ${end})`);
  }
  const fields = bitCount > 8 ? header.masks.map(channelScale) : null;
  // A 32-bit file may declare an alpha mask and leave every alpha 0 (writers that never set it): shown opaque then,
  // as browsers do.
  const hasAlpha = fields !== null && header.masks[3] !== 0;
  const channels = hasAlpha ? 4 : 3;
  const out = new Uint8Array(width * height * channels);
  let alphaSeen = false;
  const bytesPerPixel = bitCount / 8;
  const [r, g, b] = header.masks;
  const byteOrdered = !hasAlpha && bitCount >= 24 && r === 0xff0000 && g === 0x00ff00 && b === 0x0000ff;
  const bandRows = Math.max(1, Math.floor(ROW_BAND_BYTES / stride));
  for (let first = 0; first < height; first += bandRows) {
    const rows = Math.min(bandRows, height - first);
    const band = await file.read(offset + first * stride, stride * (rows - 1) + rowBytes);
    if (band.length < stride * (rows - 1) + rowBytes) throw truncated(label, "the BMP file shrank while it was read");
    for (let r = 0; r < rows; r++) {
      const stored = first + r;
      const y = topDown ? stored : height - 1 - stored;
      const row = band.subarray(r * stride, r * stride + rowBytes);
      let o = y * width * channels;
      if (!fields) {
        const mask = (1 << bitCount) - 1;
        for (let x = 0; x < width; x++) {
          const bit = x * bitCount;
          const index = (row[bit >> 3]! >> (8 - bitCount - (bit & 7))) & mask;
          out[o++] = palette[3 * index]!;
          out[o++] = palette[3 * index + 1]!;
          out[o++] = palette[3 * index + 2]!;
        }
        continue;
      }
      if (byteOrdered) {
        // Blue, green, red bytes (and one not read): most BMPs, copied without unpacking each pixel.
        for (let i = 0; i < rowBytes; i += bytesPerPixel) {
          out[o++] = row[i + 2]!;
          out[o++] = row[i + 1]!;
          out[o++] = row[i]!;
        }
        continue;
      }
      const [red, green, blue, alpha] = fields as [ChannelScale, ChannelScale, ChannelScale, ChannelScale];
      for (let x = 0, i = 0; x < width; x++, i += bytesPerPixel) {
        const pixel =
          bytesPerPixel === 2
            ? row[i]! | (row[i + 1]! << 8)
            : bytesPerPixel === 3
              ? row[i]! | (row[i + 1]! << 8) | (row[i + 2]! << 16)
              : (row[i]! | (row[i + 1]! << 8) | (row[i + 2]! << 16) | (row[i + 3]! << 24)) >>> 0;
        out[o++] = red(pixel);
        out[o++] = green(pixel);
        out[o++] = blue(pixel);
        if (hasAlpha) {
          const a = alpha(pixel);
          if (a !== 0) alphaSeen = true;
          out[o++] = a;
        }
      }
    }
  }
  if (hasAlpha && !alphaSeen) return { data: dropAlpha(out), width, height, channels: 3 };
  return { data: out, width, height, channels };
}

type ChannelScale = (pixel: number) => number;

/**
 * The 8-bit value of the field `mask` picks out of a pixel. A narrower field is widened by repeating its bits
 * (5-bit 10110 is 10110101), as ImageMagick, libpng and browsers do: 0 stays 0 and the top value becomes 255.
 */
function channelScale(mask: number): ChannelScale {
  if (mask === 0) return () => 0;
  const shift = countTrailingZeros(mask);
  const bits = 32 - Math.clz32(mask >>> shift);
  if (bits >= 8) return (pixel) => ((pixel & mask) >>> shift) >>> (bits - 8);
  const table = Uint8Array.from({ length: 2 ** bits }, (_, v) => {
    let wide = 0;
    let filled = 0;
    for (; filled < 8; filled += bits) wide = (wide << bits) | v;
    return wide >> (filled - 8);
  });
  return (pixel) => table[(pixel & mask) >>> shift]!;
}

function dropAlpha(rgba: Uint8Array): Uint8Array {
  const rgb = new Uint8Array((rgba.length / 4) * 3);
  for (let i = 0, o = 0; i < rgba.length; i += 4) {
    rgb[o++] = rgba[i]!;
    rgb[o++] = rgba[i + 1]!;
    rgb[o++] = rgba[i + 2]!;
  }
  return rgb;
}

/**
 * RLE8 and RLE4: runs of one index (two alternating ones in RLE4), literal runs padded to 16 bits, and escapes for
 * end of line, end of bitmap and a jump ahead. Pixels a file jumps over or never reaches keep palette index 0, as
 * ImageMagick and Pillow leave them.
 */
async function decodeRle(file: ByteSource, header: Header, label: string): Promise<BmpPixels> {
  const { width, height, compression, offset, palette } = header;
  const four = compression === BI_RLE4;
  // A run of one pixel is the costliest code a writer uses (2 bytes), plus an end of line per row: longer data
  // than that is not read (a file of gigabytes named .bmp), and a stream that needs more is corrupt.
  const most = 2 * width * height + 2 * height + 2;
  const data = await file.read(offset, most);
  const cut = offset + data.length >= file.size;
  const indexes = new Uint8Array(width * height);
  let x = 0;
  let y = 0;
  let p = 0;
  const put = (index: number) => {
    if (x < width && y < height) indexes[(height - 1 - y) * width + x] = index;
    x++;
  };
  const ranOut = () =>
    cut
      ? truncated(label, `the BMP's RLE data stops at row ${y} of ${height}, before its end-of-bitmap code`)
      : new ImageError("corrupt", `${label}: the image data is corrupt (the BMP's RLE data runs longer than any coding of its ${width}x${height} pixels)`);
  while (y < height) {
    if (p + 2 > data.length) throw ranOut();
    const count = data[p]!;
    const value = data[p + 1]!;
    p += 2;
    if (count > 0) {
      for (let k = 0; k < count; k++) put(four ? (k & 1 ? value & 15 : value >> 4) : value);
    } else if (value === 0) {
      x = 0;
      y++;
    } else if (value === 1) {
      break;
    } else if (value === 2) {
      if (p + 2 > data.length) throw ranOut();
      x += data[p]!;
      y += data[p + 1]!;
      p += 2;
    } else {
      const bytes = four ? Math.ceil(value / 2) : value;
      if (p + bytes > data.length) throw ranOut();
      for (let k = 0; k < value; k++) put(four ? (k & 1 ? data[p + (k >> 1)]! & 15 : data[p + (k >> 1)]! >> 4) : data[p + k]!);
      p += bytes + (bytes & 1);
    }
  }
  const out = new Uint8Array(width * height * 3);
  for (let i = 0, o = 0; i < indexes.length; i++) {
    const index = indexes[i]!;
    out[o++] = palette[3 * index]!;
    out[o++] = palette[3 * index + 1]!;
    out[o++] = palette[3 * index + 2]!;
  }
  return { data: out, width, height, channels: 3 };
}
