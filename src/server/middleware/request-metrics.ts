// Request count by route and status, and a latency histogram by route. The route is hono's matched pattern
// (`/api/images/:id`), never the raw path, so the number of series stays bounded.
import type { MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import type { MetricsRegistry } from "../metrics-registry.ts";

// 0.15 and 0.2 split Prometheus' usual 0.1-0.25 step at the search latency target (DEFAULT_TARGET_LATENCY_MS), so
// a p99 against it can be read off the histogram.
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.5, 1, 2.5, 5, 10];

export function requestMetrics(registry: MetricsRegistry): MiddlewareHandler {
  const requests = registry.counter("imgd_http_requests_total", "HTTP requests by route, method and status.");
  const latency = registry.histogram("imgd_http_request_duration_seconds", "HTTP request latency by route.", LATENCY_BUCKETS);
  return async (c, next) => {
    const t0 = performance.now();
    await next();
    // Only the app-wide middleware matched: no route answered (a 404, a 405, a Host refused).
    const route = routePath(c, -1) === "/*" ? "unmatched" : routePath(c, -1);
    requests.inc({ route, method: c.req.method, status: String(c.res.status) });
    latency.observe({ route }, (performance.now() - t0) / 1000);
  };
}
