// Worker-thread entry that owns one image session. onnxruntime-node's run() computes synchronously on the calling
// thread, so a batch on the main thread would freeze decoding and preprocessing for its whole duration.
import { ImageEmbedder } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { setNativeRequireBase } from "./native-bundle.ts";
import type { SessionOptions } from "./onnx-session.ts";

export type EmbedRequest =
  | { type: "open"; id: number; model: ResolvedModel; session: SessionOptions; nativeDir?: string }
  | { type: "embed"; id: number; pixels: Float32Array; count: number }
  | { type: "close"; id: number };

export type EmbedReply =
  | { type: "done"; id: number; vectors?: Float32Array }
  | { type: "error"; id: number; message: string };

declare const self: Worker;
let embedder: ImageEmbedder | undefined;

self.onmessage = async (event: MessageEvent<EmbedRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "open") {
      if (msg.nativeDir) setNativeRequireBase(msg.nativeDir);
      embedder = await ImageEmbedder.open(msg.model, msg.session);
      self.postMessage({ type: "done", id: msg.id } satisfies EmbedReply);
    } else if (msg.type === "embed") {
      const vectors = await embedder!.embed(msg.pixels, msg.count);
      self.postMessage({ type: "done", id: msg.id, vectors } satisfies EmbedReply, [vectors.buffer]);
    } else {
      await embedder?.close();
      self.postMessage({ type: "done", id: msg.id } satisfies EmbedReply);
    }
  } catch (err) {
    self.postMessage({ type: "error", id: msg.id, message: err instanceof Error ? err.message : String(err) } satisfies EmbedReply);
  }
};
