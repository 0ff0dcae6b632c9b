// The per-request variables middleware and routes share through hono's context.
import type { Context } from "hono";

export type AppEnv = {
  Variables: {
    requestId: string;
    /** Milliseconds per named stage of this request (embed, search, decode...), written to the access log. */
    timings: Record<string, number>;
    /** Extra fields a route wants in its access-log line (counts, cache outcome). */
    logFields: Record<string, unknown>;
  };
};

export async function timed<T>(c: Context<AppEnv>, stage: string, work: () => Promise<T> | T): Promise<T> {
  const t0 = performance.now();
  try {
    return await work();
  } finally {
    const timings = c.get("timings");
    timings[stage] = +((timings[stage] ?? 0) + performance.now() - t0).toFixed(2);
  }
}
