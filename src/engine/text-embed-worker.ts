// Worker-thread entry that owns the text tower. onnxruntime-node's run() computes synchronously on the calling
// thread; on a server's one JS thread a CLIP text run (~10 ms) would stall every other request meanwhile.
import { TextEmbedder } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { setNativeRequireBase } from "./native-bundle.ts";
import type { SessionOptions } from "./onnx-session.ts";

export type TextEmbedRequest =
  | { type: "open"; id: number; model: ResolvedModel; session: SessionOptions; nativeDir?: string }
  | { type: "embed"; id: number; texts: string[] }
  | { type: "close"; id: number };

export type TextEmbedReply =
  | { type: "done"; id: number; vectors?: Float32Array }
  | { type: "error"; id: number; message: string };

declare const self: Worker;
let embedder: TextEmbedder | undefined;

self.onmessage = async (event: MessageEvent<TextEmbedRequest>) => {
  const msg = event.data;
  try {
    if (msg.type === "open") {
      if (msg.nativeDir) setNativeRequireBase(msg.nativeDir);
      embedder = await TextEmbedder.open(msg.model, msg.session);
      self.postMessage({ type: "done", id: msg.id } satisfies TextEmbedReply);
    } else if (msg.type === "embed") {
      const vectors = await embedder!.embed(msg.texts);
      self.postMessage({ type: "done", id: msg.id, vectors } satisfies TextEmbedReply, [vectors.buffer]);
    } else {
      await embedder?.close();
      self.postMessage({ type: "done", id: msg.id } satisfies TextEmbedReply);
    }
  } catch (err) {
    self.postMessage({ type: "error", id: msg.id, message: err instanceof Error ? err.message : String(err) } satisfies TextEmbedReply);
  }
};
