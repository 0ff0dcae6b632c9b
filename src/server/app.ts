// The HTTP surface of imgd as one Hono app: middleware composed in front, one small route module per resource.
// createApp is pure wiring, so tests can call `app.request()` or serve it for real with startServer.
import { Hono } from "hono";
import { cors } from "hono/cors";
import { requestId } from "hono/request-id";
import pkg from "../../package.json" with { type: "json" };
import { allowedMethods } from "./allowed-methods.ts";
import type { AppDeps } from "./app-deps.ts";
import type { AppEnv } from "./app-env.ts";
import { toErrorResponse } from "./http-error.ts";
import { MetricsRegistry } from "./metrics-registry.ts";
import { accessLog } from "./middleware/access-log.ts";
import { apiToken } from "./middleware/api-token.ts";
import { BodyBudget, bufferedBody } from "./middleware/buffered-body.ts";
import { concurrencyLimit } from "./middleware/concurrency-limit.ts";
import { headLength } from "./middleware/head-length.ts";
import { hostCheck } from "./middleware/host-check.ts";
import { requestMetrics } from "./middleware/request-metrics.ts";
import { sameOrigin } from "./middleware/same-origin.ts";
import { openApiDocument } from "./openapi.ts";
import { duplicateRoutes } from "./routes/duplicates.ts";
import { healthRoutes } from "./routes/health.ts";
import { imageRoutes } from "./routes/images.ts";
import { ingestRoutes } from "./routes/ingest.ts";
import { metricsRoutes, registerEngineMetrics } from "./routes/metrics.ts";
import { pageRoutes } from "./routes/page.ts";
import { faceRoutes, personRoutes } from "./routes/persons.ts";
import { searchRoutes } from "./routes/search.ts";

export function createApp(deps: AppDeps): Hono<AppEnv> {
  const metrics = new MetricsRegistry();
  registerEngineMetrics(metrics, deps);
  const app = new Hono<AppEnv>();

  app.use(requestId());
  app.use(accessLog(deps.log));
  app.use(requestMetrics(metrics));
  app.use(headLength());
  app.use(hostCheck(deps.allowedHosts ?? null));
  app.onError((err, c) => {
    const res = toErrorResponse(err, c);
    if (res.status >= 500) deps.log.write({ level: "error", request_id: c.get("requestId"), error: err.stack ?? String(err) });
    return res;
  });
  app.notFound((c) => {
    const allowed = allowedMethods(app, c.req.path);
    if (allowed.length === 0) return c.json({ error: `no route for ${c.req.method} ${c.req.path}` }, 404);
    c.header("Allow", [...allowed, "OPTIONS"].join(", "));
    // Without --cors (whose middleware answers preflights first), OPTIONS says what the path takes.
    if (c.req.method === "OPTIONS") return c.body(null, 204);
    return c.json({ error: `${c.req.method} is not allowed on ${c.req.path}; it takes ${allowed.join(", ")}` }, 405);
  });

  // Open to anyone who can reach the port: probes, scrapers, the page itself (it sends the token on its own calls).
  app.route("/", healthRoutes(deps));
  app.route("/", metricsRoutes(metrics));
  let openApi: object | undefined;
  app.get("/openapi.json", (c) => c.json((openApi ??= openApiDocument(pkg.version, deps.limits))));
  app.route("/", pageRoutes());

  if (deps.cors) {
    // A preflight names the methods this path takes (as Allow does), not Hono's default list with PUT/DELETE/PATCH.
    const allowMethods = (_origin: string, c: { req: { path: string } }) => {
      const allowed = allowedMethods(app, c.req.path);
      return allowed.length === 0 ? [] : [...allowed, "OPTIONS"];
    };
    const headers = { allowHeaders: ["Authorization", "Content-Type", "X-Request-Id"], exposeHeaders: ["X-Request-Id", "Retry-After", "ETag"] };
    app.use("/api/*", cors({ origin: deps.cors, allowMethods, ...headers }));
  }
  app.use("/api/*", sameOrigin(deps.cors));
  if (deps.token) app.use("/api/*", apiToken(deps.token));
  // Uploads are read before admission (see buffered-body.ts), by authenticated clients only.
  const bodies = new BodyBudget(deps.limits.maxBufferedBytes);
  const pace = { bytesPerSecond: deps.limits.minUploadBytesPerSecond, graceMs: deps.limits.uploadGraceMs };
  app.post("/api/search", bufferedBody(deps.limits.maxImageBytes + 2 ** 20, bodies, deps.gates.search.opts.maxWaitMs, pace));
  app.post("/api/ingest", bufferedBody(deps.limits.maxIngestBytes, bodies, deps.gates.heavy.opts.maxWaitMs, pace));
  // Every other POST takes a little JSON. Read whole without a cap (up to Bun's request limit, above the ingest
  // limit), a few dozen concurrent ones held gigabytes of strings.
  const smallBody = bufferedBody(deps.limits.maxJsonBytes, bodies, deps.gates.api.opts.maxWaitMs, pace);
  const uploads = new Set(["/api/search", "/api/ingest"]);
  app.use("/api/*", (c, next) => (c.req.method !== "POST" || uploads.has(c.req.path) ? next() : smallBody(c, next)));
  // Each kind of request has its own gate: a long ingest must not take the search slots, and thumbnails (tens of
  // ms to render, dozens per page view) must neither be refused by nor teach the search gate their service time.
  const searchLimit = concurrencyLimit(deps.gates.search);
  const apiLimit = concurrencyLimit(deps.gates.api);
  const heavyLimit = concurrencyLimit(deps.gates.heavy);
  const heavy = /^\/api\/(ingest|duplicates|faces\/suggestions)(\/|$)/;
  app.use("/api/*", (c, next) => {
    const path = c.req.path;
    const limit = path === "/api/search" || path === "/api/search/" ? searchLimit : heavy.test(path) ? heavyLimit : apiLimit;
    return limit(c, next);
  });

  app.route("/api/search", searchRoutes(deps));
  app.route("/api/images", imageRoutes(deps));
  app.route("/api/ingest", ingestRoutes(deps));
  app.route("/api/duplicates", duplicateRoutes(deps));
  app.route("/api/persons", personRoutes(deps));
  app.route("/api/faces", faceRoutes(deps));
  return app;
}
