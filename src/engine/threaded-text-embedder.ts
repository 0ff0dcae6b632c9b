// The text tower behind a worker thread, with TextEmbedder's embed(texts): the server's JS thread keeps answering
// cached queries, searches and thumbnails while a batch of texts is inferred.
import type { EmbedderOptions } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import type { TextEmbedRequest } from "./text-embed-worker.ts";
import { WorkerCalls } from "./worker-calls.ts";
import { workerEntry } from "./worker-entry.ts";

type Request = TextEmbedRequest extends infer R ? (R extends { id: number } ? Omit<R, "id"> : never) : never;

export class ThreadedTextEmbedder {
  readonly dims: number;

  private constructor(
    private readonly calls: WorkerCalls<Request>,
    model: ResolvedModel,
  ) {
    this.dims = model.manifest.dims;
  }

  static async open(model: ResolvedModel, opts: EmbedderOptions = {}): Promise<ThreadedTextEmbedder> {
    const worker = new Worker(workerEntry("src/engine/text-embed-worker.ts", new URL("./text-embed-worker.ts", import.meta.url)));
    return new ThreadedTextEmbedder(await WorkerCalls.openTower<Request>(worker, "text embedding", model, opts), model);
  }

  async embed(texts: string[]): Promise<Float32Array> {
    if (texts.length === 0) return new Float32Array(0);
    return (await this.calls.call({ type: "embed", texts }))!;
  }

  close(): Promise<void> {
    return this.calls.closeTower();
  }
}
