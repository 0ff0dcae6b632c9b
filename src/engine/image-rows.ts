// Catalog rows for one file's outcome, shared by folder indexing and HTTP ingest.
import type { NewImage } from "./store/index-store.ts";
import type { DecodedImage, ImageError } from "./types.ts";

interface FileFacts {
  path: string;
  size: number;
  mtimeMs: number;
  ctimeMs?: number;
}

export function indexedRow(file: FileFacts, imohash: string, image: DecodedImage): NewImage {
  return {
    ...file,
    imohash,
    width: image.sourceWidth,
    height: image.sourceHeight,
    takenAt: image.exif.takenAt,
    cameraMake: image.exif.cameraMake,
    cameraModel: image.exif.cameraModel,
    status: "indexed",
  };
}

/** A file indexed with what another index holds for the same content: its picture's facts, this file's own. */
export function reusedRow(
  file: FileFacts,
  picture: Pick<NewImage, "imohash" | "width" | "height" | "takenAt" | "cameraMake" | "cameraModel">,
): NewImage {
  return { ...picture, ...file, status: "indexed" };
}

export function failedRow(file: FileFacts, imohash: string | null, error: ImageError): NewImage {
  return {
    ...file,
    imohash,
    width: null,
    height: null,
    takenAt: null,
    cameraMake: null,
    cameraModel: null,
    status: "failed",
    errorReason: error.reason,
    error: error.message,
  };
}
