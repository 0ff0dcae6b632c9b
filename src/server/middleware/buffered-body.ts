// Reads an upload whole before the request is admitted to a gate. Read inside the gate, a slow upload held one of
// the few slots every search needs for as long as its client took to send it: a dozen uploads at a few bytes a
// second turned every search into a 429, and the gate counted upload time as service time. Out here an upload holds
// bytes of one budget that all uploads share instead: it reserves its declared size (or the route's limit) before
// reading, waits in line while the budget is taken (unread bodies stay in the clients' buffers), and gets 503 with
// Retry-After if it waits too long. Routes then read the request as usual, its body now in memory.
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

export function bufferedBody(limitBytes: number, budget: BodyBudget, maxWaitMs: number): MiddlewareHandler {
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
      const chunks: Uint8Array[] = [];
      let bytes = 0;
      try {
        const reader = body.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          bytes += r.value.byteLength;
          if (bytes > limitBytes) return tooLarge(limitBytes);
          chunks.push(r.value);
        }
      } catch {
        return c.json({ error: "the request body was cut off before its end" }, 400);
      }
      // The chunks as they came, replayed: joining them first would hold the body twice.
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
