// Liveness and readiness for orchestrators: /health answers as soon as the process serves, /ready only once the
// text tower has been warmed by a first query (the first real query would otherwise pay for session start-up).
import { Hono } from "hono";
import type { AppDeps } from "../app-deps.ts";

export function healthRoutes(deps: AppDeps) {
  return new Hono()
    .get("/health", (c) => c.json({ status: "ok" }))
    .get("/ready", (c) =>
      deps.isReady()
        ? c.json({ status: "ready", model: deps.model.manifest.name })
        : c.json({ status: "warming up", error: "models are still loading" }, 503),
    );
}
