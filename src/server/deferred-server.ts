// The API over an index that does not exist yet: `imgd coordinator --serve` answers on its port from the start, but
// the merged index appears only when the job is done. Until then every request but /health (alive: 200) gets 503 with
// what it waits for (a wrong token gets the API's 401 at once, not a wait), then the real app answers.
import { Hono } from "hono";
import { apiToken } from "./middleware/api-token.ts";
import { openServer, type OpenedServer, type ServeOptions } from "./server.ts";

export interface DeferredServer {
  fetch(req: Request): Promise<Response>;
  close(): Promise<void>;
}

export interface DeferredServerOptions {
  /** Resolves when the index is there to open (never, for a job stopped first). */
  when: Promise<void>;
  serve: Omit<ServeOptions, "port" | "host">;
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
  void opts.when.then(() => {
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
      opts.onOpen?.();
    })().catch((err) => {
      failed = err instanceof Error ? err.message : String(err);
      opts.onEvent?.(`cannot serve ${opts.serve.indexDir}: ${failed}`);
    });
  });
  // Until it opens: the token first, as the API checks it, then why there is nothing to answer yet.
  const whyNot = async () => (failed ? `the index cannot be served: ${failed}` : `${await opts.waitingFor()}; the API answers once it is there`);
  const waiting = new Hono();
  if (opts.serve.token) waiting.use("/api/*", apiToken(opts.serve.token));
  // The process is alive while it waits (a liveness probe must not restart a coordinator mid-job); it is not ready.
  waiting.get("/health", (c) => c.json({ status: "ok" }));
  waiting.get("/ready", async (c) => c.json({ status: "warming up", error: await whyNot() }, 503));
  waiting.all("*", async (c) => {
    if (!failed) c.header("Retry-After", "5");
    return c.json({ error: await whyNot() }, 503);
  });
  return {
    async fetch(req) {
      return opened ? opened.fetch(req) : waiting.fetch(req);
    },
    async close() {
      closed = true;
      await opening;
      await opened?.close();
    },
  };
}
