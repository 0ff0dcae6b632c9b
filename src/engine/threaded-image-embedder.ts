// The image embedder behind a worker thread, with the same surface as ImageEmbedder: the indexing pipeline keeps
// decoding and preprocessing the next batch while this one is inferred.
import type { EmbedReply, EmbedRequest } from "./embed-worker.ts";
import type { EmbedderOptions } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { nativeTreeDir } from "./native-bundle.ts";
import type { PreprocessSpec } from "./types.ts";
import { workerEntry } from "./worker-entry.ts";

type Pending = { resolve: (v: Float32Array | undefined) => void; reject: (e: Error) => void };
type Request = EmbedRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export class ThreadedImageEmbedder {
  readonly dims: number;
  readonly spec: PreprocessSpec;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    model: ResolvedModel,
  ) {
    this.dims = model.manifest.dims;
    this.spec = model.manifest.preprocess;
    worker.onmessage = (event: MessageEvent<EmbedReply>) => {
      const reply = event.data;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.type === "error") p?.reject(new Error(reply.message));
      else p?.resolve(reply.vectors);
    };
    worker.onerror = (event) => {
      for (const p of this.pending.values()) p.reject(new Error(`embedding thread failed: ${event.message}`));
      this.pending.clear();
    };
  }

  static async open(model: ResolvedModel, opts: EmbedderOptions = {}): Promise<ThreadedImageEmbedder> {
    const worker = new Worker(workerEntry("src/engine/embed-worker.ts", new URL("./embed-worker.ts", import.meta.url)));
    const embedder = new ThreadedImageEmbedder(worker, model);
    try {
      await embedder.call({ type: "open", model, threads: opts.threads, nativeDir: nativeTreeDir() });
    } catch (err) {
      worker.terminate();
      throw err;
    }
    return embedder;
  }

  private call(request: Request, transfer: Transferable[] = []): Promise<Float32Array | undefined> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }

  /** Takes ownership of `pixels` (its buffer is moved to the worker). */
  async embed(pixels: Float32Array, count: number): Promise<Float32Array> {
    return (await this.call({ type: "embed", pixels, count }, [pixels.buffer]))!;
  }

  async close(): Promise<void> {
    try {
      await this.call({ type: "close" });
    } finally {
      this.worker.terminate();
    }
  }
}
