// `imgd coordinator` without its terminal: the Coordinator behind Hono on Bun.serve, plus the timer that expires
// leases and notices lost workers even when no request arrives.
import type { Hono } from "hono";
import { modelSearchDirs } from "../engine/models.ts";
import type { IndexStore } from "../engine/store/index-store.ts";
import { Coordinator, type CoordinatorOptions } from "./coordinator.ts";
import { coordinatorApp } from "./coordinator-app.ts";
import { JobModelFiles } from "./job-model-files.ts";
import { ShardQuery } from "./shard-query.ts";

export interface RunningCoordinator {
  coordinator: Coordinator;
  url: string;
  port: number;
  /**
   * Answers every request outside the mesh's /v1/ with `fetch` from now on (`imgd coordinator --serve`: the search API
   * over the merged index); until then such requests get 404. `/v1/query` then searches the index as `mergedIndex`
   * holds it open.
   */
  serveOthers(fetch: (req: Request) => Response | Promise<Response>, mergedIndex: () => Promise<IndexStore | undefined>): void;
  stop(): Promise<void>;
}

export async function startCoordinator(
  opts: CoordinatorOptions & { port?: number; hostname?: string; token: string; modelsDir?: string },
): Promise<RunningCoordinator> {
  // The port is taken before the job is opened, so a port in use fails before anything is written to the storage.
  // Until the job is open (a scan of a large tree takes a while) workers get 503, which they wait out.
  let app: Hono | null = null;
  let others: ((req: Request) => Response | Promise<Response>) | null = null;
  const server = listen(opts.port ?? 0, opts.hostname ?? "0.0.0.0", opts.onEvent, (req) => {
    if (others && !new URL(req.url).pathname.startsWith("/v1/")) return others(req);
    return app ? app.fetch(req) : Response.json({ error: "the coordinator is still opening its job" }, { status: 503 });
  });
  let coordinator: Coordinator;
  try {
    coordinator = await Coordinator.open(opts);
  } catch (err) {
    await server.stop(true);
    throw err;
  }
  const query = new ShardQuery(coordinator, opts.modelsDir);
  const models = new JobModelFiles(coordinator.opts.model, coordinator.opts.stages ?? [], modelSearchDirs(opts.modelsDir), opts.onEvent);
  // Hash the model files now, so the first worker's GET /v1/models does not wait on 600 MB of sha256.
  void models.list().catch(() => {});
  app = coordinatorApp(coordinator, opts.token, query, models);
  const timer = setInterval(() => coordinator.kick(), Math.min(500, coordinator.heartbeatMs));
  coordinator.kick();
  const port = server.port!;
  return {
    coordinator,
    port,
    url: `http://${opts.hostname && opts.hostname !== "0.0.0.0" ? opts.hostname : "127.0.0.1"}:${port}`,
    serveOthers(fetch, mergedIndex) {
      others = fetch;
      query.servedIndex = mergedIndex;
    },
    async stop() {
      clearInterval(timer);
      await server.stop(true);
      await query.close();
      await coordinator.close();
    },
  };
}

function listen(port: number, hostname: string, onEvent: ((line: string) => void) | undefined, fetch: (req: Request) => Response | Promise<Response>) {
  // Past the routes (a body that cannot be streamed), Bun's development page would answer: HTML with the error.
  const error = (err: Error) => {
    onEvent?.(`internal error: ${err.stack ?? err}`);
    return Response.json({ error: "internal error" }, { status: 500 });
  };
  try {
    // As imgd serve's: with `--serve` its API (a large ingest included) answers on this port too. Bun's body limit
    // (128 MiB) is above the API's, which answers an oversized upload with its own 413.
    return Bun.serve({ port, hostname, fetch, idleTimeout: 120, development: false, error });
  } catch (err) {
    throw new Error(`cannot listen on ${hostname}:${port}: ${err instanceof Error ? err.message : err}`);
  }
}
