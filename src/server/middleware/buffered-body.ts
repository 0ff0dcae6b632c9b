// Reads an upload whole before the request is admitted to a gate. Read inside the gate, a slow upload held one of
// the few slots every search needs for as long as its client took to send it: 100 uploads at 1 byte/s turned every
// search into a 429, and the gate counted upload time as service time. Out here an upload holds bytes instead, of
// one budget all uploads in progress share; past it, 503 with Retry-After. Routes then read the request as usual,
// its body now in memory.
import type { MiddlewareHandler } from "hono";

/** Bytes that all request bodies being read may hold together. */
export class BodyBudget {
  held = 0;

  constructor(readonly maxBytes: number) {}

  take(bytes: number): boolean {
    if (this.held + bytes > this.maxBytes) return false;
    this.held += bytes;
    return true;
  }

  give(bytes: number): void {
    this.held -= bytes;
  }
}

export function tooLarge(limit: number): Response {
  return Response.json({ error: `request body is larger than the limit of ${limit} bytes` }, { status: 413 });
}

export function bufferedBody(limitBytes: number, budget: BodyBudget): MiddlewareHandler {
  return async (c, next) => {
    if (Number(c.req.header("content-length") ?? 0) > limitBytes) return tooLarge(limitBytes);
    const body = c.req.raw.body;
    if (!body) return next();
    const chunks: Uint8Array[] = [];
    let held = 0;
    try {
      try {
        const reader = body.getReader();
        for (let r = await reader.read(); !r.done; r = await reader.read()) {
          if (held + r.value.byteLength > limitBytes) return tooLarge(limitBytes);
          if (!budget.take(r.value.byteLength)) {
            c.header("Retry-After", "1");
            return c.json({ error: "server busy: too many uploads in progress, retry later" }, 503);
          }
          held += r.value.byteLength;
          chunks.push(r.value);
        }
      } catch {
        return c.json({ error: "the request body was cut off before its end" }, 400);
      }
      const whole = new Uint8Array(held);
      for (let i = 0, at = 0; i < chunks.length; at += chunks[i]!.byteLength, i++) whole.set(chunks[i]!, at);
      chunks.length = 0;
      const raw = c.req.raw;
      c.req.raw = new Request(raw.url, { method: raw.method, headers: raw.headers, body: whole, signal: raw.signal });
      await next();
    } finally {
      budget.give(held);
    }
  };
}
