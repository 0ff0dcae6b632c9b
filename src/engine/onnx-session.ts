// Every onnxruntime session imgd opens (CLIP towers, face, object and OCR models) is configured here, once.
import type { InferenceSession } from "onnxruntime-node";
import { mappedModelPath } from "./mapped-model.ts";
import { loadOrt } from "./native.ts";
import { trimFreedMemory } from "./native-memory.ts";

export interface SessionOptions {
  threads?: number;
  /** Let idle operator threads spin; only worth it when nothing else needs the cores (a bare-model bench). */
  spin?: boolean;
  /**
   * Keep activations in onnxruntime's arena between runs and plan them once per input shape (the default): fastest
   * for a stream of equal batches, as indexing runs. A server turns both off: the arena keeps its largest batch's
   * activations for good, and text batches come in hundreds of shapes (rows x longest text), each with its plan.
   */
  arena?: boolean;
  /**
   * Repack the weights for the CPU kernels at open (the default): each run is faster and the open slower. A session
   * that runs once (a CLI query) skips it: ViT-B/32's int8 image tower then opens in ~60 instead of ~150 ms.
   */
  prepack?: boolean;
}

/** One operator at a time with `threads` inside it. */
export async function openOnnxSession(path: string, opts: SessionOptions = {}): Promise<InferenceSession> {
  const session = await loadOrt().InferenceSession.create(mappedModelPath(path), {
    intraOpNumThreads: Math.max(1, opts.threads ?? 1),
    interOpNumThreads: 1,
    graphOptimizationLevel: "all",
    executionMode: "sequential",
    enableCpuMemArena: opts.arena ?? true,
    enableMemPattern: opts.arena ?? true,
    // Idle operator threads spin by default; in the pipeline that steals the cores decode needs between batches.
    extra: { session: { intra_op: { allow_spinning: opts.spin ? "1" : "0" }, ...(opts.prepack === false ? { disable_prepacking: "1" } : {}) } },
  });
  if (opts.arena ?? true) return session;
  // Without the arena, a run's activations come from glibc's heap, where the next run reuses them (mmapping each
  // one instead made a text batch of 32 run 1.6-2x slower), and trimming after the run hands them back: ~10 us.
  const run = session.run.bind(session);
  session.run = ((...args: Parameters<typeof run>) => run(...args).finally(trimFreedMemory)) as typeof session.run;
  return session;
}
