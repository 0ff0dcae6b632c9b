// `imgd index --ocr`: detect text boxes, turn upside-down lines right way up, read each line, keep the confident
// ones with their boxes in source pixels. Runs on the pixels the pipeline already decoded for CLIP and the others.
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import type { InferenceSession } from "onnxruntime-node";
import type { AnalysisStage } from "../analysis/stage.ts";
import type { DecodedImage } from "../types.ts";
import { upsideDown } from "./ocr-classify.ts";
import { cropLine, rotate180, type LineCrop } from "./ocr-crop.ts";
import { detectText, type RgbImage } from "./ocr-detect.ts";
import type { Quad } from "./ocr-geometry.ts";
import { openOnnxSession } from "../onnx-session.ts";
import { loadDictionary, resolveOcrModel, type OcrParams } from "./ocr-model.ts";
import { recognizeStrips } from "./ocr-recognize.ts";
import { OCR_DDL, quadToBox, writeOcrLines, type OcrLine } from "./ocr-table.ts";

export type { OcrLine } from "./ocr-table.ts";

export interface OcrStageOptions {
  /** Model search dirs; a folder `ocr-ppocrv4/` in one of them wins over the installed npm package. */
  modelDirs?: string[];
  /** Threads inside each model operator. Default: the cores, at most 4. */
  threads?: number;
  /** Lines read with less confidence are dropped. Default: the manifest's dropScore (PaddleOCR's 0.5). */
  minScore?: number;
  /** Run the 180-degree direction classifier (default true). */
  classify?: boolean;
}

/** Lines longer than this many strip heights are squeezed; it bounds the recogniser's input for banner-like boxes. */
const MAX_LINE_ASPECT = 60;

export async function createOcrStage(opts: OcrStageOptions = {}): Promise<AnalysisStage<OcrLine[]>> {
  const model = await resolveOcrModel(opts.modelDirs ?? []);
  const params = model.params;
  const minScore = opts.minScore ?? params.dropScore;
  if (!(minScore >= 0 && minScore <= 1)) throw new Error(`OCR minScore must be between 0 and 1, got ${opts.minScore}`);
  const classify = opts.classify ?? true;
  const threads = opts.threads ?? Math.min(4, availableParallelism());
  const chars = loadDictionary(model.paths.dict);
  const sessions: InferenceSession[] = [];
  try {
    sessions.push(await openOnnxSession(model.paths.det, { threads }), await openOnnxSession(model.paths.rec, { threads }));
    if (classify) sessions.push(await openOnnxSession(model.paths.cls, { threads }));
  } catch (err) {
    await Promise.all(sessions.map((s) => s.release()));
    throw err;
  }
  const [det, rec, cls] = sessions as [InferenceSession, InferenceSession, InferenceSession | undefined];
  const version = stageVersion(model.manifest.name, model.manifest.files, params, minScore, classify);

  return {
    name: "ocr",
    version,
    // One model, no choice: nothing to keep.
    models: {},
    // A 3:2 photo decoded with this short side has a long side at the detector's limit, so text is found at the
    // detector's full resolution and cropped from pixels at least that sharp.
    minShortSide: Math.round((params.detLimitSideLen * 2) / 3),
    ddl: OCR_DDL,
    analyze: (image) => readImage(image, { det, rec, cls }, chars, params, minScore),
    write: writeOcrLines,
    counts: (lines) => ({ ocr: lines.length }),
    async close() {
      await Promise.all(sessions.map((s) => s.release()));
    },
  };
}

async function readImage(
  image: DecodedImage,
  models: { det: InferenceSession; rec: InferenceSession; cls?: InferenceSession },
  chars: readonly string[],
  params: OcrParams,
  minScore: number,
): Promise<OcrLine[]> {
  const rgb: RgbImage = { data: image.data, width: image.width, height: image.height };
  const boxes = await detectText(models.det, rgb, params);
  if (boxes.length === 0) return [];
  let crops = boxes.map((b) => cropLine(rgb, b.quad, params.recHeight, params.recHeight * MAX_LINE_ASPECT));
  if (models.cls) {
    const flip = await upsideDown(models.cls, rgb, crops, params);
    crops = crops.map((c, i) => (flip[i] ? turnedOver(c) : c));
  }
  const texts = await recognizeStrips(models.rec, crops, chars, params);
  const sx = image.sourceWidth / image.width;
  const sy = image.sourceHeight / image.height;
  const lines: OcrLine[] = [];
  texts.forEach((t, i) => {
    if (t.text.length > 0 && t.score >= minScore) {
      lines.push({ text: t.text, score: round4(t.score), box: quadToBox(crops[i]!.quad, sx, sy) });
    }
  });
  return lines;
}

/** The strip and its corner order both turned by 180 degrees, so the stored box still starts at the text's start. */
function turnedOver(crop: LineCrop): LineCrop {
  const [tl, tr, br, bl] = crop.quad;
  return { ...rotate180(crop), quad: [br, bl, tl, tr] as Quad };
}

function round4(v: number): number {
  return Math.round(v * 1e4) / 1e4;
}

function stageVersion(name: string, files: unknown, params: OcrParams, minScore: number, classify: boolean): string {
  const digest = createHash("sha256").update(JSON.stringify({ files, params, minScore, classify })).digest("hex");
  return `${name}-${digest.slice(0, 12)}`;
}
