// Puts a ConcurrencyGate in front of the routes below it: refused requests get 429 and a Retry-After in whole
// seconds; admitted ones report how long they held their slot, which is what the gate sizes its queue from.
import type { MiddlewareHandler } from "hono";
import type { ConcurrencyGate } from "../concurrency-gate.ts";

export function concurrencyLimit(gate: ConcurrencyGate): MiddlewareHandler {
  return async (c, next) => {
    const admitted = await gate.acquire();
    if (admitted !== true) {
      c.header("Retry-After", String(Math.ceil(admitted.retryAfterMs / 1000)));
      return c.json({ error: "server busy: too many requests in flight, retry later" }, 429);
    }
    const t0 = performance.now();
    try {
      await next();
    } finally {
      gate.release(performance.now() - t0);
    }
  };
}
