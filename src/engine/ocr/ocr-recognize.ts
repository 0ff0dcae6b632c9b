// PP-OCRv4 text recognition: upright strips 48 px high, batched by similar aspect ratio so little of each batch is
// padding, then a CTC greedy decode over the dictionary (class 0 is the blank, the last class a space).
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt } from "../native.ts";
import { stripBatchTensor } from "./ocr-crop.ts";
import type { RgbImage } from "./ocr-detect.ts";
import type { OcrParams } from "./ocr-model.ts";

export interface RecognizedText {
  text: string;
  /** Mean probability of the kept characters; 0 when nothing was read. */
  score: number;
}

export type RecParams = Pick<OcrParams, "recHeight" | "recMinWidth" | "recBatch">;

/**
 * Greedy CTC: the most likely class per time step, repeats merged, blanks dropped. `probs` is `steps` rows of
 * `classes` (softmax output); `chars[k]` is class k's text and `chars[0]` the blank.
 */
export function ctcGreedyDecode(probs: Float32Array, steps: number, classes: number, chars: readonly string[]): RecognizedText {
  let text = "";
  let sum = 0;
  let kept = 0;
  let previous = -1;
  for (let t = 0; t < steps; t++) {
    const row = t * classes;
    let best = 0;
    let bestP = probs[row]!;
    for (let k = 1; k < classes; k++) {
      const p = probs[row + k]!;
      if (p > bestP) {
        bestP = p;
        best = k;
      }
    }
    if (best !== 0 && best !== previous) {
      text += chars[best] ?? "";
      sum += bestP;
      kept++;
    }
    previous = best;
  }
  return { text, score: kept > 0 ? sum / kept : 0 };
}

/** Reads every strip (all `recHeight` high); results are in the strips' order. */
export async function recognizeStrips(
  session: InferenceSession,
  strips: RgbImage[],
  chars: readonly string[],
  params: RecParams,
): Promise<RecognizedText[]> {
  const ort = loadOrt();
  const out: RecognizedText[] = new Array(strips.length);
  const order = strips.map((_, i) => i).sort((a, b) => strips[a]!.width - strips[b]!.width);
  for (let start = 0; start < order.length; start += params.recBatch) {
    const ids = order.slice(start, start + params.recBatch);
    const batch = ids.map((i) => strips[i]!);
    const width = Math.max(params.recMinWidth, ...batch.map((s) => s.width));
    const input = new ort.Tensor("float32", stripBatchTensor(batch, params.recHeight, width), [
      batch.length,
      3,
      params.recHeight,
      width,
    ]);
    const result = await session.run({ [session.inputNames[0]!]: input });
    const probs = result[session.outputNames[0]!]!;
    const [n, steps, classes] = probs.dims as number[];
    if (n !== batch.length || classes !== chars.length) {
      throw new Error(
        `recogniser returned shape [${probs.dims.join(", ")}]; expected ${batch.length} rows of ${chars.length} classes (dictionary + blank + space)`,
      );
    }
    const data = probs.data as Float32Array;
    ids.forEach((id, row) => {
      const decoded = ctcGreedyDecode(data.subarray(row * steps! * classes, (row + 1) * steps! * classes), steps!, classes, chars);
      out[id] = { text: decoded.text.trim(), score: decoded.score };
    });
  }
  return out;
}
