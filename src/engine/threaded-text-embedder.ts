// The text tower behind a worker thread, with TextEmbedder's embed(texts): the server's JS thread keeps answering
// cached queries, searches and thumbnails while a batch of texts is inferred.
import type { EmbedderOptions } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { nativeTreeDir } from "./native-bundle.ts";
import type { TextEmbedReply, TextEmbedRequest } from "./text-embed-worker.ts";
import { workerEntry } from "./worker-entry.ts";

type Pending = { resolve: (v: Float32Array | undefined) => void; reject: (e: Error) => void };
type Request = TextEmbedRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export class ThreadedTextEmbedder {
  readonly dims: number;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(
    private readonly worker: Worker,
    model: ResolvedModel,
  ) {
    this.dims = model.manifest.dims;
    worker.onmessage = (event: MessageEvent<TextEmbedReply>) => {
      const reply = event.data;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.type === "error") p?.reject(new Error(reply.message));
      else p?.resolve(reply.vectors);
    };
    worker.onerror = (event) => {
      for (const p of this.pending.values()) p.reject(new Error(`text embedding thread failed: ${event.message}`));
      this.pending.clear();
    };
  }

  static async open(model: ResolvedModel, opts: EmbedderOptions = {}): Promise<ThreadedTextEmbedder> {
    const worker = new Worker(workerEntry("src/engine/text-embed-worker.ts", new URL("./text-embed-worker.ts", import.meta.url)));
    const embedder = new ThreadedTextEmbedder(worker, model);
    try {
      await embedder.call({ type: "open", model, threads: opts.threads, nativeDir: nativeTreeDir() });
    } catch (err) {
      worker.terminate();
      throw err;
    }
    return embedder;
  }

  private call(request: Request): Promise<Float32Array | undefined> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id });
    });
  }

  async embed(texts: string[]): Promise<Float32Array> {
    if (texts.length === 0) return new Float32Array(0);
    return (await this.call({ type: "embed", texts }))!;
  }

  async close(): Promise<void> {
    try {
      await this.call({ type: "close" });
    } finally {
      this.worker.terminate();
    }
  }
}
