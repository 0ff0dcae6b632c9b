// The API over an index that does not exist yet: `imgd coordinator --serve` answers on its port from the start, but
// the merged index appears only when the job is done. Until then /health (alive), /metrics (the HTTP layer's; a
// scrape must not see the target down for the whole job) and /openapi.json answer 200; every other request gets 503
// with what it waits for (a wrong token gets the API's 401 at once, not a wait), then the real app answers.
import { Hono } from "hono";
import type { IndexStore } from "../engine/store/index-store.ts";
import { html } from "hono/html";
import pkg from "../../package.json" with { type: "json" };
import { DEFAULT_LIMITS } from "./app-deps.ts";
import { MetricsRegistry } from "./metrics-registry.ts";
import { apiToken } from "./middleware/api-token.ts";
import { requestMetrics } from "./middleware/request-metrics.ts";
import { openApiDocument } from "./openapi.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { publishServerAddress } from "./server-address.ts";
import { openServer, type OpenedServer, type ServeOptions } from "./server.ts";

export interface DeferredServer {
  fetch(req: Request): Promise<Response>;
  /**
   * The index the app holds open, once the `when` it waits for has passed (undefined if it could not open). Code in
   * this process must search that one: opening the catalog again and closing it would drop the app's DuckDB lock,
   * since a process's POSIX locks on a file go with any of its descriptors for it.
   */
  store(): Promise<IndexStore | undefined>;
  close(): Promise<void>;
}

export interface DeferredServerOptions {
  /** Resolves when the index is there to open (never, for a job stopped first). */
  when: Promise<void>;
  serve: Omit<ServeOptions, "port" | "host">;
  /**
   * Where it answers. Written beside the index once it is open, as imgd serve does: the server then holds the catalog,
   * and `imgd query --index` on it goes through the server instead of failing on DuckDB's lock.
   */
  url: string;
  /** Why it is not there yet, for the 503's body ("the index is not merged yet: 40/100 files"). */
  waitingFor: () => Promise<string>;
  /** Called once the app answers; `onEvent` with why, if it could not open. */
  onOpen?: () => void;
  onEvent?: (line: string) => void;
}

export function deferredServer(opts: DeferredServerOptions): DeferredServer {
  let opened: OpenedServer | null = null;
  let failed: string | null = null;
  let closed = false;
  let opening: Promise<void> | null = null;
  let unpublish = () => {};
  const settled = opts.when.then(() => {
    if (closed) return;
    opening = (async () => {
      const server = await openServer(opts.serve);
      try {
        await server.ready;
      } catch (err) {
        await server.close();
        throw err;
      }
      if (closed) return server.close();
      opened = server;
      unpublish = publishServerAddress(opts.serve.indexDir, new URL(opts.url));
      opts.onOpen?.();
    })().catch((err) => {
      failed = err instanceof Error ? err.message : String(err);
      opts.onEvent?.(`cannot serve ${opts.serve.indexDir}: ${failed}`);
    });
    return opening;
  });
  // Until it opens: the token first, as the API checks it, then why there is nothing to answer yet.
  const whyNot = async () => (failed ? `the index cannot be served: ${failed}` : `${await opts.waitingFor()}; the API answers once it is there`);
  const waiting = new Hono();
  // No index gauges: there is no index to measure yet (the real app's registry starts afresh when it opens).
  const metrics = new MetricsRegistry();
  waiting.use(requestMetrics(metrics));
  if (opts.serve.token) waiting.use("/api/*", apiToken(opts.serve.token));
  // The process is alive while it waits (a liveness probe must not restart a coordinator mid-job); it is not ready.
  waiting.get("/health", (c) => c.json({ status: "ok" }));
  waiting.get("/ready", async (c) => c.json({ status: "warming up", error: await whyNot() }, 503));
  waiting.route("/", metricsRoutes(metrics));
  // The API is known before its index is: the same document the app will serve.
  waiting.get("/openapi.json", (c) => c.json(openApiDocument(pkg.version, { ...DEFAULT_LIMITS, ...opts.serve.limits })));
  // A person who opens the page mid-job reads why there is no search yet, and the page reloads itself until there is.
  waiting.get("/", async (c) => {
    const why = await whyNot();
    const refresh = failed ? "" : html`<meta http-equiv="refresh" content="5">`;
    if (!failed) c.header("Retry-After", "5");
    return c.html(html`<!doctype html><html><head><meta charset="utf-8">${refresh}<title>imgd: not ready yet</title></head><body><p>${why}.</p></body></html>`, 503);
  });
  // As notFound, not a catch-all route: the metrics then count /ready and / under their own route.
  waiting.notFound(async (c) => {
    if (!failed) c.header("Retry-After", "5");
    return c.json({ error: await whyNot() }, 503);
  });
  return {
    async fetch(req) {
      return opened ? opened.fetch(req) : waiting.fetch(req);
    },
    async store() {
      await settled;
      return opened?.deps.store;
    },
    async close() {
      closed = true;
      await opening;
      unpublish();
      await opened?.close();
    },
  };
}
