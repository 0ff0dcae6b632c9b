import { resolve } from "node:path";
import { createElement } from "react";
import { DEFAULT_BATCH_FILES, DEFAULT_MIN_FREE_BYTES } from "../../cluster-net/coordinator.ts";
import { startCoordinator, type RunningCoordinator } from "../../cluster-net/coordinator-server.ts";
import { mergedIndexDir } from "../../cluster-net/storage-layout.ts";
import { deferredServer } from "../../server/deferred-server.ts";
import { formatStatusLine, plainStatusLog } from "../../cluster-net/coordinator-plain.ts";
import { MIN_TOKEN_LENGTH, resolveToken } from "../../cluster-net/mesh-token.ts";
import { excludeDirNames, intFlag, parse, portFlag, tokenFlags } from "../args.ts";
import { STAGE_FLAGS, stageSpecs } from "../stage-flags.ts";
import { UsageError } from "../usage.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    storage: { type: "string" },
    port: { type: "string" },
    bind: { type: "string" },
    token: { type: "string" },
    "token-file": { type: "string" },
    batch: { type: "string" },
    "lease-ttl": { type: "string" },
    "min-free-mb": { type: "string" },
    "exclude-dir": { type: "string", multiple: true },
    model: { type: "string" },
    models: { type: "string" },
    serve: { type: "boolean" },
    plain: { type: "boolean" },
    ...STAGE_FLAGS,
  });
  if (positionals.length === 0) throw new UsageError("coordinator needs at least one DIR");
  if (!values.storage) throw new UsageError("coordinator needs --storage DIR (shared by every worker)");
  const token = resolveToken(tokenFlags(values));
  // The mesh hands out work and model files to whoever holds it, on every interface by default.
  if (token.length < MIN_TOKEN_LENGTH) {
    throw new UsageError(`the mesh token must be at least ${MIN_TOKEN_LENGTH} characters (openssl rand -hex 16 > ~/.imgd-token)`);
  }
  const ttlSeconds = Number(values["lease-ttl"] ?? 30);
  if (!(ttlSeconds > 0)) throw new UsageError("--lease-ttl takes seconds > 0");
  const tui = !values.plain && process.stdout.isTTY === true && !process.env.CI;
  const events: string[] = [];
  const onEvent = (line: string) => {
    events.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
    if (events.length > 100) events.shift();
    if (!tui) process.stderr.write(`[coordinator] ${line}\n`);
  };

  const running = await startCoordinator({
    roots: positionals.map((p) => resolve(p)),
    storage: resolve(values.storage),
    // Left out, a resumed job keeps its own model (as imgd index keeps an index's).
    model: values.model,
    stages: stageSpecs(values),
    modelsDir: values.models,
    // Left out, a resumed job keeps the batch size it was started with.
    batchFiles: values.batch === undefined ? undefined : intFlag(values.batch, "batch", DEFAULT_BATCH_FILES),
    // Left out, a resumed job keeps the names it was started (or last run) with.
    excludeNames: excludeDirNames(values["exclude-dir"]),
    leaseTtlMs: Math.round(ttlSeconds * 1000),
    // 0 turns the check off, for a filesystem whose free space says nothing (a quota elsewhere, say).
    minFreeBytes: intFlag(values["min-free-mb"], "min-free-mb", DEFAULT_MIN_FREE_BYTES / 1e6, 0) * 1e6,
    port: portFlag(values.port, 7700),
    hostname: values.bind,
    token,
    onEvent,
  });
  const { coordinator } = running;
  onEvent(`listening on port ${running.port}; storage ${coordinator.opts.storage}`);
  const api = values.serve ? serveMergedIndex(running, token, values.models, onEvent) : null;
  let finish!: (code: number) => void;
  const finished = new Promise<number>((r) => (finish = r));
  const onSignal = () => finish(130);
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  // Machine-readable, for scripts and tests that start it with --port 0; after the handlers, so a stop sent as soon
  // as this is read is a clean one.
  if (!tui) process.stdout.write(`${JSON.stringify({ event: "listening", port: running.port, job: coordinator.jobId })}\n`);
  if (!values.serve) void coordinator.merged.then(() => finish(0));

  if (tui) {
    const { render } = await import("ink");
    const { CoordinatorApp } = await import("../../tui/coordinator-app.tsx");
    const app = render(
      createElement(CoordinatorApp, {
        status: () => coordinator.status(),
        events: () => events,
        pause: (paused: boolean) => coordinator.control(paused ? "pause" : "resume"),
        drain: (id: string) => coordinator.control("drain", id),
        quit: (stage: 1 | 2) => {
          if (stage === 2) return finish(130);
          void coordinator.drainAll().then(async () => {
            onEvent("quitting: workers finish their current batch and stop; the job resumes when you run this again");
            for (;;) {
              const s = await coordinator.status();
              if (s.workers.every((w) => w.state === "gone" || w.state === "lost")) return finish(0);
              await Bun.sleep(200);
            }
          });
        },
      }),
      { exitOnCtrlC: false },
    );
    const code = await finished;
    app.unmount();
    // The screen's last frame was drawn before the end: how the job ended (the merge and where its index is) goes below it.
    process.stderr.write(`${formatStatusLine(await coordinator.status())}\n${events.at(-1) ?? ""}\n`);
    await api?.close();
    await running.stop();
    return code;
  }

  const statusLog = plainStatusLog();
  const timer = setInterval(async () => {
    const line = statusLog(await coordinator.status());
    if (line !== null) process.stderr.write(`${line}\n`);
  }, 2000);
  const code = await finished;
  clearInterval(timer);
  const status = await coordinator.status();
  process.stderr.write(`${formatStatusLine(status)}\n`);
  await api?.close();
  await running.stop();
  return code;
}

/**
 * `--serve`: imgd serve's API and search page on the coordinator's port over the merged index once there is one,
 * behind the mesh token, since the coordinator listens on every interface.
 */
function serveMergedIndex(running: RunningCoordinator, token: string, modelsDir: string | undefined, onEvent: (line: string) => void) {
  const { coordinator } = running;
  const { storage, stages } = coordinator.opts;
  const api = deferredServer({
    when: coordinator.merged,
    // Ingested images get the job's stages, as the workers' did.
    serve: { indexDir: mergedIndexDir(storage), stages, modelsDir, token },
    url: running.url,
    waitingFor: async () => {
      const s = await coordinator.status();
      return `the index is not merged yet (${s.done}/${s.total} files, ${s.phase})`;
    },
    onOpen: () => onEvent(`serving the search API and page over the merged index at ${running.url}/ (mesh token as bearer)`),
    onEvent,
  });
  running.serveOthers(api.fetch, api.store);
  return api;
}
