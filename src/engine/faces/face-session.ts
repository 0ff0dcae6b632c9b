// onnxruntime sessions for the face models, configured like the CLIP towers (see embed.ts): one operator at a time
// with `threads` inside it, and no spinning idle threads stealing cores from decode.
import type { InferenceSession } from "onnxruntime-node";
import { loadOrt } from "../native.ts";

export async function openFaceSession(path: string, threads = 1): Promise<InferenceSession> {
  return loadOrt().InferenceSession.create(path, {
    intraOpNumThreads: Math.max(1, threads),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    extra: { session: { intra_op: { allow_spinning: "0" } } },
  });
}
