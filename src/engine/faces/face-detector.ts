// One SCRFD session: scrfd.py's detect() preprocessing -> onnxruntime -> decode + NMS -> faces in the pixels of the
// image it was given. The steps are public so the benchmark can time each one.
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt } from "../native.ts";
import { resizeLinearRgb } from "../objects/letterbox.ts";
import { decodeScrfd, detectGeometry, faceToImage, scrfdLayout, type DetectGeometry, type RawFace, type ScrfdOutput } from "./face-detect.ts";
import type { RgbPixels } from "./face-align.ts";
import type { DetectorParams, ResolvedFaceModel } from "./face-models.ts";
import { openOnnxSession } from "../onnx-session.ts";

export class FaceDetector {
  readonly threshold: number;
  readonly nmsThreshold: number;
  readonly inputWidth: number;
  readonly inputHeight: number;

  private constructor(
    private readonly session: InferenceSession,
    readonly model: ResolvedFaceModel<DetectorParams>,
    private readonly inputName: string,
    private readonly outputNames: string[],
    threshold: number | undefined,
  ) {
    this.threshold = threshold ?? model.params.scoreThreshold;
    this.nmsThreshold = model.params.nmsThreshold;
    [this.inputWidth, this.inputHeight] = model.params.inputSize;
  }

  static async open(model: ResolvedFaceModel<DetectorParams>, opts: { threads?: number; threshold?: number } = {}): Promise<FaceDetector> {
    if (opts.threshold !== undefined && !(opts.threshold >= 0 && opts.threshold <= 1)) {
      throw new Error(`face detector score threshold must be between 0 and 1, got ${opts.threshold}`);
    }
    const session = await openOnnxSession(model.path, { threads: opts.threads });
    try {
      const { input, outputs } = model.params;
      const inputName = input ?? session.inputNames[0]!;
      const outputNames = outputs ?? [...session.outputNames];
      const missing = [inputName, ...outputNames].filter((n) => !session.inputNames.includes(n) && !session.outputNames.includes(n));
      if (missing.length > 0 || !session.inputNames.includes(inputName)) {
        throw new Error(
          `${model.path} does not look like ${model.manifest.name}: missing [${missing.join(", ")}]; it has inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]`,
        );
      }
      scrfdLayout(outputNames.length);
      return new FaceDetector(session, model, inputName, outputNames, opts.threshold);
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** The image resized (cv2 INTER_LINEAR) into the top-left of a black square, as (x - mean) / std RGB planes. */
  prepare(image: RgbPixels): { tensor: Float32Array; geometry: DetectGeometry } {
    if (image.data.length < image.width * image.height * 3) {
      throw new Error(`face detection: a ${image.width}x${image.height} RGB image needs ${image.width * image.height * 3} bytes, got ${image.data.length}`);
    }
    const g = detectGeometry(image.width, image.height, this.inputWidth, this.inputHeight);
    const resized = resizeLinearRgb(image.data, image.width, image.height, g.newWidth, g.newHeight);
    const { mean, std } = this.model.params;
    const plane = this.inputWidth * this.inputHeight;
    const tensor = new Float32Array(3 * plane).fill((0 - mean) / std);
    const table = Float32Array.from({ length: 256 }, (_, v) => (v - mean) / std);
    for (let y = 0; y < g.newHeight; y++) {
      for (let x = 0; x < g.newWidth; x++) {
        const p = (y * g.newWidth + x) * 3;
        const o = y * this.inputWidth + x;
        tensor[o] = table[resized[p]!]!;
        tensor[o + plane] = table[resized[p + 1]!]!;
        tensor[o + 2 * plane] = table[resized[p + 2]!]!;
      }
    }
    return { tensor, geometry: g };
  }

  async infer(tensor: Float32Array): Promise<ScrfdOutput[]> {
    const ort = loadOrt();
    const feeds = { [this.inputName]: new ort.Tensor("float32", tensor, [1, 3, this.inputHeight, this.inputWidth]) };
    const out = await this.session.run(feeds, this.outputNames);
    return this.outputNames.map((name) => {
      const t = out[name]!;
      if (t.type !== "float32") throw new Error(`${this.model.manifest.name}: output "${name}" is ${t.type}, expected float32`);
      return { data: t.data as Float32Array, dims: [...t.dims] };
    });
  }

  /** Raw outputs -> faces in the pixels of the image `prepare` was given. */
  decode(outputs: ScrfdOutput[], geometry: DetectGeometry): RawFace[] {
    const faces = decodeScrfd(outputs, {
      inputWidth: this.inputWidth,
      inputHeight: this.inputHeight,
      threshold: this.threshold,
      nmsThreshold: this.nmsThreshold,
    });
    return faces.map((f) => faceToImage(f, geometry));
  }

  async detect(image: RgbPixels): Promise<RawFace[]> {
    const { tensor, geometry } = this.prepare(image);
    return this.decode(await this.infer(tensor), geometry);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}
