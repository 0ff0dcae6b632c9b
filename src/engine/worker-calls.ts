// Request/reply over a worker thread: each request gets an id, each reply settles the promise with that id, and a
// thread that dies fails every call still waiting instead of leaving it hanging.
import type { EmbedderOptions } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { nativeTreeDir } from "./native-bundle.ts";

/** A thread's answer to one request: a tower's is its vectors, the HEIC decoder's its pixels (heic-thread.ts). */
export type WorkerReply<Result = Float32Array> = { id: number } & ({ type: "error"; message: string } | { type: "done"; result?: Result });

export class WorkerCalls<Request extends { type: string }, Result = Float32Array> {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (v: Result | undefined) => void; reject: (e: Error) => void }>();

  constructor(
    readonly worker: Worker,
    what: string,
  ) {
    worker.onmessage = (event: MessageEvent<WorkerReply<Result>>) => {
      const reply = event.data;
      const p = this.pending.get(reply.id);
      this.pending.delete(reply.id);
      if (reply.type === "error") p?.reject(new Error(reply.message));
      else p?.resolve(reply.result);
    };
    worker.onerror = (event) => {
      for (const p of this.pending.values()) p.reject(new Error(`${what} thread failed: ${event.message}`));
      this.pending.clear();
    };
  }

  /**
   * Starts a tower thread (`worker`) and has it open `model`; a thread that cannot is ended. The "open" and "close"
   * messages are the ones embed-worker.ts and text-embed-worker.ts both answer.
   */
  static async openTower<R extends { type: string }>(
    worker: Worker,
    what: string,
    model: ResolvedModel,
    opts: EmbedderOptions,
  ): Promise<WorkerCalls<R>> {
    const calls = new WorkerCalls<R>(worker, what);
    try {
      await calls.call({ type: "open", model, session: opts, nativeDir: nativeTreeDir() } as unknown as R);
    } catch (err) {
      worker.terminate();
      throw err;
    }
    return calls;
  }

  /** Has the thread release its model, then ends it. */
  async closeTower(): Promise<void> {
    try {
      await this.call({ type: "close" } as Request);
    } finally {
      this.worker.terminate();
    }
  }

  call(request: Request, transfer: Transferable[] = []): Promise<Result | undefined> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...request, id }, transfer);
    });
  }
}
