// Puts a ConcurrencyGate in front of the routes below it; refused requests get 429 and a hint when to retry.
import type { MiddlewareHandler } from "hono";
import type { ConcurrencyGate } from "../concurrency-gate.ts";

export function concurrencyLimit(gate: ConcurrencyGate, retryAfterSeconds = 1): MiddlewareHandler {
  return async (c, next) => {
    if (!(await gate.acquire())) {
      c.header("Retry-After", String(retryAfterSeconds));
      return c.json({ error: "server busy: too many requests in flight, retry later" }, 429);
    }
    try {
      await next();
    } finally {
      gate.release();
    }
  };
}
