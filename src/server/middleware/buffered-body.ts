// Reads an upload whole before the request is admitted to a gate. Read inside the gate, a slow upload held one of
// the few slots every search needs for as long as its client took to send it: a dozen uploads at a few bytes a
// second turned every search into a 429, and the gate counted upload time as service time. Out here an upload holds
// bytes of one budget that all uploads share instead: it reserves its declared size (or the route's limit) before
// reading, waits in line while the budget is taken (unread bodies stay in the clients' buffers), and gets 503 with
// Retry-After if it waits too long. Routes then read the request as usual, its body now in memory. A body that
// holds its bytes of the budget while arriving slower than a minimum rate (a byte a second from a client that
// declared 64 MiB would hold the whole budget for as long as it liked: Bun's idle timer restarts with each byte) is
// cut off with 408.
import type { MiddlewareHandler } from "hono";

type Waiter = { bytes: number; admit: (ok: boolean) => void; timer: ReturnType<typeof setTimeout> };

/** Bytes that all request bodies being received or handled may hold together, handed out in arrival order. */
export class BodyBudget {
  held = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly maxBytes: number) {}

  /** Resolves true once `bytes` (at most the whole budget) are reserved, false if that takes over `maxWaitMs`. */
  take(bytes: number, maxWaitMs: number): Promise<boolean> {
    const want = Math.min(bytes, this.maxBytes);
    if (this.waiting.length === 0 && this.held + want <= this.maxBytes) {
      this.held += want;
      return Promise.resolve(true);
    }
    return new Promise((admit) => {
      const waiter: Waiter = {
        bytes: want,
        admit,
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(waiter), 1);
          admit(false);
        }, maxWaitMs),
      };
      this.waiting.push(waiter);
    });
  }

  give(bytes: number): void {
    this.held -= Math.min(bytes, this.maxBytes);
    while (this.waiting.length > 0 && this.held + this.waiting[0]!.bytes <= this.maxBytes) {
      const next = this.waiting.shift()!;
      clearTimeout(next.timer);
      this.held += next.bytes;
      next.admit(true);
    }
  }
}

export function tooLarge(limit: number): Response {
  return Response.json({ error: `request body is larger than the limit of ${limit} bytes` }, { status: 413 });
}

/** How fast a body must arrive: on average `bytesPerSecond` once `graceMs` have passed since its reading began. */
export interface UploadPace {
  bytesPerSecond: number;
  graceMs: number;
}

export function bufferedBody(limitBytes: number, budget: BodyBudget, maxWaitMs: number, pace: UploadPace): MiddlewareHandler {
  return async (c, next) => {
    const declared = Number(c.req.header("content-length") ?? NaN);
    if (declared > limitBytes) return tooLarge(limitBytes);
    const body = c.req.raw.body;
    if (!body) return next();
    // A chunked body, of no declared size, may grow to the limit.
    const reserved = Number.isSafeInteger(declared) && declared >= 0 ? declared : limitBytes;
    if (!(await budget.take(reserved, maxWaitMs))) {
      c.header("Retry-After", "1");
      return c.json({ error: "server busy: too many uploads in progress, retry later" }, 503);
    }
    try {
      const read = await readPaced(body, limitBytes, pace);
      if (read.kind === "too-large") return tooLarge(limitBytes);
      if (read.kind === "cut-off") return c.json({ error: "the request body was cut off before its end" }, 400);
      if (read.kind === "too-slow") {
        c.header("Connection", "close");
        const rate = Math.round(pace.bytesPerSecond / 1024);
        return c.json(
          {
            error:
              `upload too slow: ${read.bytes} bytes in ${read.seconds.toFixed(1)} s; a body must arrive at ${rate} KiB/s on average ` +
              `after its first ${pace.graceMs / 1000} s, as it holds memory other uploads wait for`,
          },
          408,
        );
      }
      // The chunks as they came, replayed: joining them first would hold the body twice.
      const chunks = read.chunks;
      const replay = new ReadableStream<Uint8Array>({
        start(controller) {
          for (const chunk of chunks.splice(0)) controller.enqueue(chunk);
          controller.close();
        },
      });
      const raw = c.req.raw;
      c.req.raw = new Request(raw.url, { method: raw.method, headers: raw.headers, body: replay, signal: raw.signal });
      await next();
    } finally {
      budget.give(reserved);
    }
  };
}

type PacedRead =
  | { kind: "whole"; chunks: Uint8Array[] }
  | { kind: "too-large" }
  | { kind: "cut-off" }
  | { kind: "too-slow"; bytes: number; seconds: number };

/** The body's chunks, unless it passes `limitBytes`, ends early, or falls behind `pace` (then it is cancelled). */
async function readPaced(body: ReadableStream<Uint8Array>, limitBytes: number, pace: UploadPace): Promise<PacedRead> {
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  let tooSlow = false;
  const t0 = performance.now();
  const reader = body.getReader();
  // A client that sends nothing at all never wakes the read loop: the check runs on a timer.
  const watchdog = setInterval(() => {
    const late = performance.now() - t0 - pace.graceMs;
    if (late > 0 && bytes < (pace.bytesPerSecond * late) / 1000) {
      tooSlow = true;
      void reader.cancel().catch(() => {});
    }
  }, Math.min(1000, Math.max(50, pace.graceMs / 4)));
  try {
    for (let r = await reader.read(); !r.done && !tooSlow; r = await reader.read()) {
      bytes += r.value.byteLength;
      if (bytes > limitBytes) return { kind: "too-large" };
      chunks.push(r.value);
    }
  } catch {
    if (!tooSlow) return { kind: "cut-off" };
  } finally {
    clearInterval(watchdog);
  }
  return tooSlow ? { kind: "too-slow", bytes, seconds: (performance.now() - t0) / 1000 } : { kind: "whole", chunks };
}
