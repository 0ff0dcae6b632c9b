// Plain data that crosses engine stage boundaries. Stages take and return these; nothing here does I/O.

/** One file found by the scan stage. Paths are absolute and normalised. */
export interface ScannedFile {
  path: string;
  size: number;
  mtimeMs: number;
  /**
   * Status change time. A file replaced by another of the same size whose mtime was kept (`cp -p`, `rsync -t`,
   * `exiftool -P`) has a new one, so size and mtime alone would leave the old photo's vector on it. Absent where a
   * file list comes without it (a worker's leased batch, an ingest).
   */
  ctimeMs?: number;
}

export interface ExifInfo {
  /** ISO-8601 local date-time the photo was taken (DateTimeOriginal), or null. */
  takenAt: string | null;
  cameraMake: string | null;
  cameraModel: string | null;
}

/** Interleaved 8-bit RGB pixels, EXIF orientation already applied. */
export interface DecodedImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** Size of the stored image after orientation, before any shrink-on-load. */
  sourceWidth: number;
  sourceHeight: number;
  /** sharp's name of the format (jpeg, png, heif...), or a camera RAW's extension (dng, cr2, cr3, nef, arw, raf, rw2, orf). */
  format: string;
  exif: ExifInfo;
}

/** How a model wants its pixels; read from the model manifest. */
export interface PreprocessSpec {
  /** Shortest side is resized to this, then a size x size center crop is taken. */
  size: number;
  interpolation: "bicubic" | "bilinear";
  mean: [number, number, number];
  std: [number, number, number];
}

/** How wide a batch of token rows is: the context length, or the longest text of the batch. */
export type TokenPadding = "longest" | "max_length";

/** Tokenizer settings from the model manifest. */
export interface TokenizerSpec {
  kind: "clip-bpe";
  contextLength: number;
  /** Where the BPE merges come from: the bundled npm vocabulary or a file beside the model. */
  vocab: "bundled" | string;
  /** Absent (index manifests written before it existed) means "max_length". */
  padding?: TokenPadding;
}

/** Why a file could not be indexed; stored per image and listed by `imgd info --errors`. */
export type FailureReason =
  | "empty-file"
  | "not-an-image"
  | "corrupt"
  | "truncated"
  | "too-many-pixels"
  | "unreadable";

export class ImageError extends Error {
  constructor(
    readonly reason: FailureReason,
    message: string,
  ) {
    super(message);
    this.name = "ImageError";
  }
}

/** What an image whose header claims more than `maxPixels` pixels is refused with, before any pixel is decoded. */
export function tooManyPixels(label: string, width: number, height: number, maxPixels: number): ImageError {
  return new ImageError("too-many-pixels", `${label}: ${width}x${height} is ${width * height} pixels, more than the limit of ${maxPixels}`);
}
