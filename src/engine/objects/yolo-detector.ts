// One YOLO detector session: letterbox -> onnxruntime -> decode + NMS -> boxes in source-image pixels. The steps
// are public so the benchmark can time each one.
import { openOnnxSession } from "../onnx-session.ts";
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt } from "../native.ts";
import type { DecodedImage } from "../types.ts";
import { COCO_LABELS } from "./coco-labels.ts";
import { letterbox, unletterboxBox, type LetterboxGeometry, type RgbImage } from "./letterbox.ts";
import type { ResolvedObjectModel } from "./yolo-model.ts";
import { decodeYolo, type RawDetection } from "./yolo-decode.ts";

export interface Detection {
  label: string;
  classId: number;
  score: number;
  /** x0 y0 x1 y1 in source-image pixels (after EXIF orientation, before any shrink-on-load). */
  box: [number, number, number, number];
}

export interface DetectorOptions {
  threads?: number;
  /** Override the manifest's confidence threshold / NMS IoU. */
  conf?: number;
  iou?: number;
}

export interface RawOutput {
  data: Float32Array;
  dims: number[];
}

export class YoloDetector {
  readonly conf: number;
  readonly iou: number;
  readonly size: number;

  private constructor(
    private readonly session: InferenceSession,
    readonly model: ResolvedObjectModel,
    opts: DetectorOptions,
  ) {
    this.conf = opts.conf ?? model.params.conf;
    this.iou = opts.iou ?? model.params.iou;
    this.size = model.params.inputSize;
  }

  static async open(model: ResolvedObjectModel, opts: DetectorOptions = {}): Promise<YoloDetector> {
    for (const [name, v] of [["conf", opts.conf], ["iou", opts.iou]] as const) {
      if (v !== undefined && !(v >= 0 && v <= 1)) throw new Error(`object detector ${name} must be between 0 and 1, got ${v}`);
    }
    const session = await openOnnxSession(model.path, { threads: opts.threads });
    const { input, output } = model.params;
    if (!session.inputNames.includes(input) || !session.outputNames.includes(output)) {
      await session.release();
      throw new Error(
        `${model.path} does not look like ${model.manifest.name}: expected input "${input}" and output "${output}", found inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]`,
      );
    }
    return new YoloDetector(session, model, opts);
  }

  prepare(image: RgbImage): { tensor: Float32Array; geometry: LetterboxGeometry } {
    return letterbox(image, this.size);
  }

  async infer(tensor: Float32Array): Promise<RawOutput> {
    const ort = loadOrt();
    const { input, output } = this.model.params;
    const out = await this.session.run({ [input]: new ort.Tensor("float32", tensor, [1, 3, this.size, this.size]) });
    const t = out[output]!;
    if (t.type !== "float32") throw new Error(`${this.model.manifest.name}: output "${output}" is ${t.type}, expected float32`);
    return { data: t.data as Float32Array, dims: [...t.dims] };
  }

  /** Raw output -> detections in source pixels of `image` (a decode of the source, maybe shrunk on load). */
  decode(raw: RawOutput, geometry: LetterboxGeometry, image: Pick<DecodedImage, "width" | "height" | "sourceWidth" | "sourceHeight">): Detection[] {
    const found = decodeYolo(raw.data, raw.dims, {
      classes: COCO_LABELS.length,
      conf: this.conf,
      iou: this.iou,
      maxDet: this.model.params.maxDet,
      maxNms: this.model.params.maxNms,
      layout: this.model.params.layout,
    });
    return toSourcePixels(found, geometry, image);
  }

  async detect(image: DecodedImage): Promise<Detection[]> {
    const { tensor, geometry } = this.prepare(image);
    return this.decode(await this.infer(tensor), geometry, image);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

export function toSourcePixels(
  found: RawDetection[],
  g: LetterboxGeometry,
  image: Pick<DecodedImage, "width" | "height" | "sourceWidth" | "sourceHeight">,
): Detection[] {
  const sx = image.sourceWidth / image.width;
  const sy = image.sourceHeight / image.height;
  const out: Detection[] = [];
  for (const d of found) {
    const [x0, y0, x1, y1] = unletterboxBox(d.box, g);
    const box: Detection["box"] = [
      Math.min(x0 * sx, image.sourceWidth),
      Math.min(y0 * sy, image.sourceHeight),
      Math.min(x1 * sx, image.sourceWidth),
      Math.min(y1 * sy, image.sourceHeight),
    ];
    // A box entirely in the padding clips to nothing.
    if (box[2] <= box[0] || box[3] <= box[1]) continue;
    out.push({ label: COCO_LABELS[d.classId]!, classId: d.classId, score: d.score, box });
  }
  return out;
}
