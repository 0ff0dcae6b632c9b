// Bytes to one model input: decode (with shrink-on-load to the model's size) then CLIP preprocessing.
import { decodeImage } from "./decode.ts";
import { preprocessInto } from "./preprocess.ts";
import type { PreprocessSpec } from "./types.ts";

/** `name` is the file's name when `input` is its bytes (an upload): a camera RAW is known by it. */
export async function prepareImage(input: string | Uint8Array, spec: PreprocessSpec, maxPixels?: number, name?: string) {
  const image = await decodeImage(input, { targetShortSide: spec.size, maxPixels, name });
  const pixels = new Float32Array(3 * spec.size * spec.size);
  preprocessInto(image, spec, pixels, 0);
  return { image, pixels };
}
