// PP-OCR's text direction classifier: is this strip upside down? Text photographed at an angle past 90 degrees
// ends up in a box whose corner order reads it from the wrong end, and the recogniser alone reads noise.
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt } from "../native.ts";
import { stripBatchTensor, warpQuad, type LineCrop } from "./ocr-crop.ts";
import type { RgbImage } from "./ocr-detect.ts";
import type { OcrParams } from "./ocr-model.ts";

export type ClsParams = Pick<OcrParams, "clsHeight" | "clsWidth" | "clsThresh" | "recBatch">;

/** For each strip, whether the classifier is sure (above clsThresh) that it is rotated by 180 degrees. */
export async function upsideDown(
  session: InferenceSession,
  image: RgbImage,
  crops: LineCrop[],
  params: ClsParams,
): Promise<boolean[]> {
  const ort = loadOrt();
  const out: boolean[] = [];
  for (let start = 0; start < crops.length; start += params.recBatch) {
    const batch = crops.slice(start, start + params.recBatch);
    // Resampled from the image at the classifier's size rather than squeezed from the recogniser's strip.
    const strips = batch.map((c) => {
      const width = Math.max(1, Math.min(params.clsWidth, Math.ceil((params.clsHeight * c.width) / c.height)));
      return warpQuad(image, c.quad, width, params.clsHeight);
    });
    const input = new ort.Tensor("float32", stripBatchTensor(strips, params.clsHeight, params.clsWidth), [
      batch.length,
      3,
      params.clsHeight,
      params.clsWidth,
    ]);
    const result = await session.run({ [session.inputNames[0]!]: input });
    const probs = result[session.outputNames[0]!]!;
    const dims = probs.dims as number[];
    if (dims.length !== 2 || dims[0] !== batch.length || dims[1] !== 2) {
      throw new Error(`direction classifier returned shape [${dims.join(", ")}], expected [${batch.length}, 2]`);
    }
    const p = probs.data as Float32Array;
    for (let i = 0; i < batch.length; i++) out.push(p[i * 2 + 1]! > p[i * 2]! && p[i * 2 + 1]! > params.clsThresh);
  }
  return out;
}
