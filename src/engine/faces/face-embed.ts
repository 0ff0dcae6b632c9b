// ArcFace-style embedder: aligned 112x112 RGB crops -> (x - 127.5) / 127.5 planes in the model's channel order ->
// one L2-normalised vector per crop, several crops per session run (arcface_onnx.py's get_feat).
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt } from "../native.ts";
import type { EmbedderParams, ResolvedFaceModel } from "./face-models.ts";
import { openOnnxSession } from "../onnx-session.ts";

export class FaceEmbedder {
  readonly dims: number;
  readonly size: number;

  private constructor(
    private readonly session: InferenceSession,
    readonly model: ResolvedFaceModel<EmbedderParams>,
    private readonly inputName: string,
    private readonly outputName: string,
    /** Crops per run: the manifest's maxBatch, or 1 when the export fixes its batch dimension at 1. */
    readonly maxBatch: number,
  ) {
    this.dims = model.params.dims;
    this.size = model.params.inputSize;
  }

  static async open(model: ResolvedFaceModel<EmbedderParams>, opts: { threads?: number } = {}): Promise<FaceEmbedder> {
    const session = await openOnnxSession(model.path, { threads: opts.threads });
    try {
      const inputName = model.params.input ?? session.inputNames[0]!;
      const outputName = model.params.output ?? session.outputNames[0]!;
      if (!session.inputNames.includes(inputName) || !session.outputNames.includes(outputName)) {
        throw new Error(
          `${model.path} does not look like ${model.manifest.name}: expected input "${inputName}" and output "${outputName}", found inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]`,
        );
      }
      const meta = session.inputMetadata.find((m) => m.name === inputName);
      // Symbolic batch dimensions come back as strings (or -1); only a positive number fixes the batch size.
      const dim = meta?.isTensor ? meta.shape[0] : undefined;
      const fixedBatch = typeof dim === "number" && dim > 0 ? dim : undefined;
      return new FaceEmbedder(session, model, inputName, outputName, Math.min(model.params.maxBatch, fixedBatch ?? Infinity));
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** Writes one crop (size² interleaved RGB) as normalised planes at `out[offset..]`. */
  fill(crop: Uint8Array, out: Float32Array, offset: number): void {
    const { mean, std, channelOrder } = this.model.params;
    const plane = this.size * this.size;
    if (crop.length !== plane * 3) throw new Error(`face crop has ${crop.length} bytes, expected ${this.size}x${this.size} RGB`);
    const order = channelOrder === "rgb" ? [0, 1, 2] : [2, 1, 0];
    for (let c = 0; c < 3; c++) {
      const src = order[c]!;
      const base = offset + c * plane;
      for (let i = 0; i < plane; i++) out[base + i] = (crop[i * 3 + src]! - mean) / std;
    }
  }

  /** One unit vector per crop, in order; a crop the model maps to a zero or non-finite vector gets null. */
  async embed(crops: readonly Uint8Array[]): Promise<(Float32Array | null)[]> {
    const out: (Float32Array | null)[] = [];
    const ort = loadOrt();
    const per = 3 * this.size * this.size;
    for (let start = 0; start < crops.length; start += this.maxBatch) {
      const batch = crops.slice(start, start + this.maxBatch);
      const tensor = new Float32Array(batch.length * per);
      batch.forEach((crop, i) => this.fill(crop, tensor, i * per));
      const result = await this.session.run({ [this.inputName]: new ort.Tensor("float32", tensor, [batch.length, 3, this.size, this.size]) }, [
        this.outputName,
      ]);
      const t = result[this.outputName]!;
      const data = t.data as Float32Array;
      if (t.type !== "float32" || data.length !== batch.length * this.dims) {
        throw new Error(
          `${this.model.manifest.name}: output "${this.outputName}" is ${t.type} [${t.dims.join(", ")}], expected float32 [${batch.length}, ${this.dims}]`,
        );
      }
      for (let i = 0; i < batch.length; i++) out.push(unitVector(data.subarray(i * this.dims, (i + 1) * this.dims)));
    }
    return out;
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

export function unitVector(v: Float32Array): Float32Array | null {
  let sum = 0;
  for (let i = 0; i < v.length; i++) sum += v[i]! * v[i]!;
  if (!(sum > 0) || !Number.isFinite(sum)) return null;
  const inv = 1 / Math.sqrt(sum);
  return Float32Array.from(v, (x) => x * inv);
}
