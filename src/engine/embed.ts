// The embed stage: preprocessed pixels or texts in, L2-normalised rows out, through one onnxruntime session per tower.
import { openOnnxSession, type SessionOptions } from "./onnx-session.ts";
import type { InferenceSession } from "onnxruntime-node";
import type { TowerFile } from "./model-manifest.ts";
import type { ResolvedModel } from "./models.ts";
import { loadOrt } from "./native.ts";
import type { PreprocessSpec, TokenPadding } from "./types.ts";

export type EmbedderOptions = SessionOptions;

/** CLIP's end-of-text token: attention covers the sequence up to and including it. */
const END_OF_TEXT = 49407n;

/** What the indexing pipeline needs from an image embedder, in-thread or behind a worker. */
export interface BatchImageEmbedder {
  readonly dims: number;
  readonly spec: PreprocessSpec;
  /** May take ownership of `pixels`. */
  embed(pixels: Float32Array, count: number): Promise<Float32Array>;
  close(): Promise<void>;
}

export class ImageEmbedder implements BatchImageEmbedder {
  readonly dims: number;
  readonly spec: PreprocessSpec;

  private constructor(
    private readonly session: InferenceSession,
    private readonly model: ResolvedModel,
  ) {
    this.dims = model.manifest.dims;
    this.spec = model.manifest.preprocess;
  }

  static async open(model: ResolvedModel, opts: EmbedderOptions = {}): Promise<ImageEmbedder> {
    const session = await openOnnxSession(model.imagePath, opts);
    checkSignature(session, model.manifest.image, model.imagePath, []);
    return new ImageEmbedder(session, model);
  }

  /** `pixels` holds `count` CHW images of size x size, already normalised with the manifest's mean/std. */
  async embed(pixels: Float32Array, count: number): Promise<Float32Array> {
    const size = this.spec.size;
    const expected = count * 3 * size * size;
    if (pixels.length !== expected) {
      throw new Error(`image batch of ${count} needs ${expected} floats (3x${size}x${size} each), got ${pixels.length}`);
    }
    const ort = loadOrt();
    const tower = this.model.manifest.image;
    const out = await this.session.run({ [tower.input]: new ort.Tensor("float32", pixels, [count, 3, size, size]) });
    return embeddingRows(out[tower.output]!, count, this.dims, this.model.imagePath);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

interface Tokenizer {
  tokenize(texts: string[], opts: { padTo: TokenPadding }): { ids: BigInt64Array; width: number };
}

export class TextEmbedder {
  readonly dims: number;
  readonly contextLength: number;
  /** "longest" runs the tower over only as many positions as the batch's longest text (see the manifest schema). */
  readonly padding: TokenPadding;
  private readonly attentionMask: string | null;

  private tokenizer: Tokenizer | null = null;

  private constructor(
    private readonly session: InferenceSession,
    private readonly model: ResolvedModel,
  ) {
    this.dims = model.manifest.dims;
    this.contextLength = model.manifest.tokenizer.contextLength;
    this.padding = model.manifest.tokenizer.padding ?? "max_length";
    const mask = model.manifest.text.attentionMaskInput ?? "attention_mask";
    this.attentionMask = session.inputNames.includes(mask) ? mask : null;
  }

  static async open(model: ResolvedModel, opts: EmbedderOptions = {}): Promise<TextEmbedder> {
    const session = await openOnnxSession(model.textPath, opts);
    const mask = model.manifest.text.attentionMaskInput ?? "attention_mask";
    checkSignature(session, model.manifest.text, model.textPath, [mask]);
    return new TextEmbedder(session, model);
  }

  async embed(texts: string[]): Promise<Float32Array> {
    if (texts.length === 0) return new Float32Array(0);
    // Loaded on first use, not at the top: processes that only embed images or pass token ids never parse the
    // BPE vocabulary.
    const tokenizer = (this.tokenizer ??= (await import("./tokenizer.ts")).tokenizerFor(
      this.model.manifest.tokenizer,
      this.model.dir,
    ));
    const { ids, width } = tokenizer.tokenize(texts, { padTo: this.padding });
    return this.embedIds(ids, texts.length, width);
  }

  /** `ids` is `count` rows of `width` CLIP token ids (start, text, end, zero padding); `width` <= contextLength. */
  async embedIds(ids: BigInt64Array, count: number, width: number): Promise<Float32Array> {
    if (!Number.isInteger(width) || width < 1 || width > this.contextLength) {
      throw new Error(`token rows must be 1 to ${this.contextLength} ids wide, got ${width}`);
    }
    if (ids.length !== count * width) {
      throw new Error(`token batch of ${count} rows of ${width} needs ${count * width} ids, got ${ids.length}`);
    }
    const ort = loadOrt();
    const tower = this.model.manifest.text;
    const feeds: Record<string, InstanceType<typeof ort.Tensor>> = {
      [tower.input]: new ort.Tensor("int64", ids, [count, width]),
    };
    if (this.attentionMask) feeds[this.attentionMask] = new ort.Tensor("int64", attentionMask(ids, width), [count, width]);
    const out = await this.session.run(feeds);
    return embeddingRows(out[tower.output]!, count, this.dims, this.model.textPath);
  }

  async close(): Promise<void> {
    await this.session.release();
  }
}

/** Ones up to and including each row's end-of-text token, zeros after; rows without one attend to non-zero ids. */
export function attentionMask(ids: BigInt64Array, width: number): BigInt64Array {
  const mask = new BigInt64Array(ids.length);
  for (let row = 0; row < ids.length; row += width) {
    const end = ids.subarray(row, row + width).indexOf(END_OF_TEXT);
    for (let i = 0; i < width; i++) {
      mask[row + i] = (end >= 0 ? i <= end : ids[row + i] !== 0n) ? 1n : 0n;
    }
  }
  return mask;
}

/** Scales each row to unit length in place; an all-zero row stays zero rather than becoming NaN. */
export function l2normalizeRows(v: Float32Array, dims: number): void {
  if (v.length % dims !== 0) throw new Error(`${v.length} values are not whole rows of ${dims}`);
  for (let row = 0; row < v.length; row += dims) {
    let sum = 0;
    for (let i = row; i < row + dims; i++) sum += v[i]! * v[i]!;
    if (sum === 0) continue;
    const inv = 1 / Math.sqrt(sum);
    for (let i = row; i < row + dims; i++) v[i]! *= inv;
  }
}

function checkSignature(session: InferenceSession, tower: TowerFile, path: string, optionalInputs: string[]): void {
  const unexpected = session.inputNames.filter((n) => n !== tower.input && !optionalInputs.includes(n));
  if (!session.inputNames.includes(tower.input) || unexpected.length > 0 || !session.outputNames.includes(tower.output)) {
    throw new Error(
      `${path} does not match its manifest: expected input "${tower.input}" and output "${tower.output}", ` +
        `the file has inputs [${session.inputNames.join(", ")}] and outputs [${session.outputNames.join(", ")}]`,
    );
  }
}

function embeddingRows(tensor: { dims: readonly number[]; data: unknown }, count: number, dims: number, path: string) {
  if (tensor.dims.length !== 2 || tensor.dims[0] !== count || tensor.dims[1] !== dims) {
    throw new Error(`${path} returned shape [${tensor.dims.join(", ")}], expected [${count}, ${dims}] (manifest dims)`);
  }
  // Copied out so the rows outlive the session's output buffer.
  const rows = Float32Array.from(tensor.data as Float32Array);
  l2normalizeRows(rows, dims);
  return rows;
}
