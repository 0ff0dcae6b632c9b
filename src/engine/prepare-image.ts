// Bytes to one model input: decode (with shrink-on-load to the model's size) then CLIP preprocessing.
import { decodeImage } from "./decode.ts";
import { preprocessInto } from "./preprocess.ts";
import type { PreprocessSpec } from "./types.ts";

export async function prepareImage(input: string | Uint8Array, spec: PreprocessSpec, maxPixels?: number) {
  const image = await decodeImage(input, { targetShortSide: spec.size, maxPixels });
  const pixels = new Float32Array(3 * spec.size * spec.size);
  preprocessInto(image, spec, pixels, 0);
  return { image, pixels };
}
