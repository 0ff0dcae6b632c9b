// `imgd coordinator` without its terminal: the Coordinator behind Hono on Bun.serve, plus the timer that expires
// leases and notices lost workers even when no request arrives.
import { modelSearchDirs } from "../engine/models.ts";
import { Coordinator, type CoordinatorOptions } from "./coordinator.ts";
import { coordinatorApp } from "./coordinator-app.ts";
import { JobModelFiles } from "./job-model-files.ts";
import { ShardQuery } from "./shard-query.ts";

export interface RunningCoordinator {
  coordinator: Coordinator;
  url: string;
  port: number;
  stop(): Promise<void>;
}

export async function startCoordinator(
  opts: CoordinatorOptions & { port?: number; hostname?: string; token: string; modelsDir?: string },
): Promise<RunningCoordinator> {
  const coordinator = await Coordinator.open(opts);
  const query = new ShardQuery(coordinator, opts.modelsDir);
  const models = new JobModelFiles(coordinator.opts.model, coordinator.opts.stages ?? [], modelSearchDirs(opts.modelsDir), opts.onEvent);
  // Hash the model files now, so the first worker's GET /v1/models does not wait on 600 MB of sha256.
  void models.list().catch(() => {});
  const app = coordinatorApp(coordinator, opts.token, query, models);
  const server = Bun.serve({ port: opts.port ?? 0, hostname: opts.hostname ?? "0.0.0.0", fetch: app.fetch, idleTimeout: 60 });
  const timer = setInterval(() => coordinator.kick(), Math.min(500, coordinator.heartbeatMs));
  coordinator.kick();
  const port = server.port!;
  return {
    coordinator,
    port,
    url: `http://${opts.hostname && opts.hostname !== "0.0.0.0" ? opts.hostname : "127.0.0.1"}:${port}`,
    async stop() {
      clearInterval(timer);
      await server.stop(true);
      await query.close();
      await coordinator.close();
    },
  };
}
