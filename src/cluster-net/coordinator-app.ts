// HTTP for the coordinator: each route validates its message and makes one Coordinator call.
import { Hono, type Context } from "hono";
import { z } from "zod";
import { Coordinator, CoordinatorError, versionText } from "./coordinator.ts";
import { requireToken } from "./mesh-token.ts";
import {
  CommitRequest,
  ControlRequest,
  DeregisterRequest,
  HeartbeatRequest,
  LeaseRequest,
  MODEL_SHA256_HEADER,
  PROTOCOL_VERSION,
  type ModelFilesReply,
  RegisterRequest,
} from "./protocol.ts";
import type { JobModelFiles } from "./job-model-files.ts";
import type { ShardQuery } from "./shard-query.ts";

export function coordinatorApp(coordinator: Coordinator, token: string, query?: ShardQuery, models?: JobModelFiles): Hono {
  const app = new Hono();
  app.use("/v1/*", requireToken(token));
  app.use("/v1/*", async (c, next) => {
    const t0 = performance.now();
    await next();
    const route = c.req.path.slice(4);
    const t = timings[route] ?? (timings[route] = { count: 0, ms: 0 });
    t.count++;
    t.ms += performance.now() - t0;
  });
  // Time spent handling each route, for the benchmark's overhead figure.
  const timings: Record<string, { count: number; ms: number }> = {};
  app.get("/v1/timings", (c) => {
    const cpu = process.cpuUsage();
    return c.json({ ...timings, process: { count: 1, ms: (cpu.user + cpu.system) / 1000 } });
  });

  app.post("/v1/register", async (c) => {
    const body = await c.req.json().catch(() => null);
    // The version is checked before the shape: a newer worker's message may not parse as ours at all.
    const protocol = z.object({ protocol: z.number() }).safeParse(body);
    if (!protocol.success) return c.json({ error: "register needs a protocol version" }, 400);
    if (protocol.data.protocol !== PROTOCOL_VERSION) return c.json({ error: versionText(protocol.data.protocol) }, 426);
    return c.json(await coordinator.register(parse(RegisterRequest, body)));
  });
  app.post("/v1/lease", async (c) => {
    const req = parse(LeaseRequest, await body(c));
    return c.json(await coordinator.lease(req.workerId, req.ahead));
  });
  app.post("/v1/heartbeat", async (c) => {
    const req = parse(HeartbeatRequest, await body(c));
    return c.json(await coordinator.heartbeat(req.workerId, req.stats));
  });
  app.post("/v1/commit", async (c) => c.json(await coordinator.commit(parse(CommitRequest, await body(c)))));
  app.post("/v1/deregister", async (c) => {
    const req = parse(DeregisterRequest, await body(c));
    await coordinator.deregister(req.workerId, req.reason);
    return c.json({ ok: true });
  });
  app.post("/v1/control", async (c) => {
    const req = parse(ControlRequest, await body(c));
    await coordinator.control(req.action, req.workerId);
    return c.json({ ok: true });
  });
  app.get("/v1/status", async (c) => c.json(await coordinator.status()));
  if (models) {
    app.get("/v1/models", async (c) => {
      const { files, unavailable } = await models.list();
      const reply: ModelFilesReply = { files: files.map(({ localPath: _, ...f }) => f), unavailable };
      return c.json(reply);
    });
    app.get("/v1/models/file", async (c) => {
      const path = c.req.query("path") ?? "";
      const file = await models.find(path);
      if (!file) return c.json({ error: `${JSON.stringify(path)} is not one of this job's model files` }, 404);
      // Bun sends the file from disk (sendfile); a 600 MB tower never sits in memory.
      return new Response(Bun.file(file.localPath), {
        headers: {
          "content-type": "application/octet-stream",
          "content-length": String(file.bytes),
          [MODEL_SHA256_HEADER]: file.sha256,
        },
      });
    });
  }
  if (query) {
    app.post("/v1/query", async (c) => {
      const req = parse(z.object({ text: z.string().min(1), k: z.number().int().positive().max(1000).default(10) }), await body(c));
      return c.json(await query.text(req.text, req.k));
    });
  }

  app.onError((err, c) => {
    if (err instanceof CoordinatorError) return c.json({ error: err.message }, err.status);
    if (err instanceof BadMessage) return c.json({ error: err.message }, 400);
    return c.json({ error: err instanceof Error ? err.message : String(err) }, 500);
  });
  return app;
}

class BadMessage extends Error {}

async function body(c: Context): Promise<unknown> {
  return c.req.json().catch(() => {
    throw new BadMessage("body is not JSON");
  });
}

function parse<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new BadMessage(`bad message: ${r.error.issues.map((i) => `${i.path.join(".")} ${i.message}`).join("; ")}`);
  return r.data;
}
