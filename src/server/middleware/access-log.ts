// One JSON line per request, written after the response is ready, with the stage timings routes recorded.
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { AppEnv } from "../app-env.ts";
import type { JsonLog } from "../json-log.ts";

export function accessLog(log: JsonLog): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const t0 = performance.now();
    c.set("timings", {});
    c.set("logFields", {});
    await next();
    log.write({
      request_id: c.get("requestId"),
      method: c.req.method,
      path: c.req.path,
      route: routePath(c, -1),
      status: c.res.status,
      ms: +(performance.now() - t0).toFixed(2),
      timings: c.get("timings"),
      ...c.get("logFields"),
      ...(c.error ? { error: c.error.message } : {}),
    });
  };
}
