// The image embedder behind a worker thread, with the same surface as ImageEmbedder: the indexing pipeline keeps
// decoding and preprocessing the next batch while this one is inferred.
import type { EmbedRequest } from "./embed-worker.ts";
import type { EmbedderOptions } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import type { PreprocessSpec } from "./types.ts";
import { WorkerCalls } from "./worker-calls.ts";
import { workerEntry } from "./worker-entry.ts";

type Request = EmbedRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export class ThreadedImageEmbedder {
  readonly dims: number;
  readonly spec: PreprocessSpec;

  private constructor(
    private readonly calls: WorkerCalls<Request>,
    model: ResolvedModel,
  ) {
    this.dims = model.manifest.dims;
    this.spec = model.manifest.preprocess;
  }

  static async open(model: ResolvedModel, opts: EmbedderOptions = {}): Promise<ThreadedImageEmbedder> {
    const worker = new Worker(workerEntry("src/engine/embed-worker.ts", new URL("./embed-worker.ts", import.meta.url)));
    return new ThreadedImageEmbedder(await WorkerCalls.openTower<Request>(worker, "embedding", model, opts), model);
  }

  /** Takes ownership of `pixels` (its buffer is moved to the worker). */
  async embed(pixels: Float32Array, count: number): Promise<Float32Array> {
    return (await this.calls.call({ type: "embed", pixels, count }, [pixels.buffer]))!;
  }

  close(): Promise<void> {
    return this.calls.closeTower();
  }
}
