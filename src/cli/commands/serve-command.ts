import { resolve } from "node:path";
import { DEFAULT_MEMORY_TARGET_BYTES } from "../../engine/memory-governor.ts";
import { DEFAULT_IMAGE_TOWER_IDLE_MS } from "../../server/idle-closing-tower.ts";
import { DEFAULT_MAX_CONCURRENCY, DEFAULT_TARGET_LATENCY_MS, startServer } from "../../server/server.ts";
import { DEFAULT_INDEX, intFlag, noArguments, parse, portFlag } from "../args.ts";
import { STAGE_FLAGS, stageSpecs } from "../stage-flags.ts";
import { UsageError } from "../usage.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    index: { type: "string" },
    models: { type: "string" },
    port: { type: "string" },
    host: { type: "string" },
    "allowed-host": { type: "string", multiple: true },
    token: { type: "string" },
    cors: { type: "string" },
    "max-concurrency": { type: "string" },
    "target-latency-ms": { type: "string" },
    "memory-target-mb": { type: "string" },
    "image-idle-s": { type: "string" },
    log: { type: "string" },
    root: { type: "string", multiple: true },
    threads: { type: "string" },
    "batch-wait-ms": { type: "string" },
    "batch-max": { type: "string" },
    ...STAGE_FLAGS,
  });
  noArguments(positionals, "serve", "--index");
  const server = await startServer({
    indexDir: resolve(values.index ?? DEFAULT_INDEX),
    modelsDir: values.models,
    stages: stageSpecs(values),
    port: portFlag(values.port, 8080),
    host: values.host ?? "127.0.0.1",
    allowedHosts: values["allowed-host"]?.map(allowedHostFlag),
    // The environment keeps the token out of `ps` output.
    token: tokenFlag(values.token) ?? (process.env.IMGD_TOKEN || undefined),
    cors: corsFlag(values.cors),
    maxConcurrency: intFlag(values["max-concurrency"], "max-concurrency", DEFAULT_MAX_CONCURRENCY),
    // 0 turns the adaptive admission off: a fixed number in flight and queued, whatever the latency.
    targetLatencyMs: intFlag(values["target-latency-ms"], "target-latency-ms", DEFAULT_TARGET_LATENCY_MS, 0),
    // Above this resident size the server collects garbage every 2 s; 0 never does.
    memoryTargetBytes: intFlag(values["memory-target-mb"], "memory-target-mb", DEFAULT_MEMORY_TARGET_BYTES / 1e6, 0) * 1e6,
    // The image tower is closed after this many seconds without an image query or ingest; 0 keeps it open.
    imageTowerIdleMs: intFlag(values["image-idle-s"], "image-idle-s", DEFAULT_IMAGE_TOWER_IDLE_MS / 1000, 0) * 1000,
    logFile: values.log ? resolve(values.log) : undefined,
    roots: (values.root ?? []).map((r) => resolve(r)),
    threads: values.threads ? intFlag(values.threads, "threads", 1) : undefined,
    // --batch-wait-ms 0 turns text micro-batching off (each query runs the text tower alone).
    textBatch: {
      maxWaitMs: intFlag(values["batch-wait-ms"], "batch-wait-ms", 3, 0),
      maxBatch: intFlag(values["batch-max"], "batch-max", 32),
    },
  });
  // Taken before the first line is printed: a stop during the warm-up closes the index and withdraws server.json too.
  const stopped = new Promise<"stop">((done) => {
    const stop = () => done("stop");
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
  });
  process.stderr.write(`imgd: serving ${server.url} (warming up models; GET /ready turns 200 when done)\n`);
  if (server.stageModels) process.stderr.write(`imgd: stages on ingested images: ${server.stageModels}\n`);
  if ((await Promise.race([server.ready, stopped])) !== "stop") {
    process.stderr.write(`imgd: ready\n`);
    await stopped;
  }
  await server.stop();
  return 0;
}

/** An empty --token (`--token "$VAR"` with VAR unset) would serve without one: refused rather than open to anyone. */
function tokenFlag(value: string | undefined): string | undefined {
  if (value === "") throw new UsageError("--token is empty; give the secret, or leave the flag out to serve without one");
  return value;
}

/** A browser's Origin is exactly scheme://host[:port]; anything else given here would never match one. */
function corsFlag(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const url = URL.canParse(value) ? new URL(value) : null;
  if (!url || !/^https?:$/.test(url.protocol) || url.origin !== value) {
    throw new UsageError(`--cors takes an origin like https://app.example.com or http://localhost:3000, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** A name with a port or a scheme would never equal a request's host name. */
function allowedHostFlag(value: string): string {
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i.test(value)) {
    throw new UsageError(`--allowed-host takes a host name like photos.lan (no scheme, no port), not ${JSON.stringify(value)}`);
  }
  return value;
}
