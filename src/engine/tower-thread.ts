// The worker-thread side of a tower (embed-worker.ts, text-embed-worker.ts): open the model on "open", answer each
// "embed" with its vectors (moved, not copied), release on "close", and turn any failure into an error reply for
// that request alone. onnxruntime-node's run() computes synchronously on the calling thread, hence the threads.
import type { ResolvedModel } from "./models.ts";
import { setNativeRequireBase } from "./native-bundle.ts";
import type { SessionOptions } from "./onnx-session.ts";
import type { WorkerReply } from "./worker-calls.ts";

/** What a tower thread is asked: `Embed` is the tower's own input (pixels, or texts). */
export type TowerRequest<Embed> =
  | { type: "open"; id: number; model: ResolvedModel; session: SessionOptions; nativeDir?: string }
  | ({ type: "embed"; id: number } & Embed)
  | { type: "close"; id: number };

declare const self: Worker;

export function serveTower<Tower extends { close(): Promise<void> }, Embed>(
  open: (model: ResolvedModel, session: SessionOptions) => Promise<Tower>,
  embed: (tower: Tower, input: Embed) => Promise<Float32Array>,
): void {
  let tower: Tower | undefined;
  self.onmessage = async (event: MessageEvent<TowerRequest<Embed>>) => {
    const msg = event.data;
    try {
      if (msg.type === "open") {
        if (msg.nativeDir) setNativeRequireBase(msg.nativeDir);
        tower = await open(msg.model, msg.session);
        self.postMessage({ type: "done", id: msg.id } satisfies WorkerReply);
      } else if (msg.type === "embed") {
        if (!tower) throw new Error("the tower thread was asked to embed before it opened a model");
        const vectors = await embed(tower, msg);
        self.postMessage({ type: "done", id: msg.id, result: vectors } satisfies WorkerReply, [vectors.buffer]);
      } else {
        await tower?.close();
        self.postMessage({ type: "done", id: msg.id } satisfies WorkerReply);
      }
    } catch (err) {
      self.postMessage({ type: "error", id: msg.id, message: err instanceof Error ? err.message : String(err) } satisfies WorkerReply);
    }
  };
}
