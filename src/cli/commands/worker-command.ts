import { resolve } from "node:path";
import { DEFAULT_MEMORY_TARGET_BYTES } from "../../engine/memory-governor.ts";
import { parsePathMaps } from "../../engine/path-map.ts";
import { resolveToken } from "../../cluster-net/mesh-token.ts";
import { DEFAULT_WORKER_BATCH, runWorker } from "../../cluster-net/worker.ts";
import { coordinatorUrlFlag, defaultThreads, intFlag, noArguments, parse, tokenFlags } from "../args.ts";
import { UsageError } from "../usage.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    coordinator: { type: "string" },
    token: { type: "string" },
    "token-file": { type: "string" },
    threads: { type: "string" },
    batch: { type: "string" },
    storage: { type: "string" },
    models: { type: "string" },
    "no-fetch-models": { type: "boolean" },
    "path-map": { type: "string", multiple: true },
    host: { type: "string" },
    "memory-target-mb": { type: "string" },
  });
  noArguments(positionals, "worker", values.coordinator ? undefined : "--coordinator");
  if (!values.coordinator) throw new UsageError("worker needs --coordinator URL");
  const drain = new AbortController();
  const onSignal = () => {
    if (drain.signal.aborted) process.exit(130);
    drain.abort();
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
  const summary = await runWorker({
    coordinator: coordinatorUrlFlag(values.coordinator),
    token: resolveToken(tokenFlags(values)),
    threads: intFlag(values.threads, "threads", defaultThreads()),
    batchSize: values.batch ? intFlag(values.batch, "batch", DEFAULT_WORKER_BATCH) : undefined,
    storage: values.storage ? resolve(values.storage) : undefined,
    modelsDir: values.models,
    fetchModels: !values["no-fetch-models"],
    memoryTargetBytes: intFlag(values["memory-target-mb"], "memory-target-mb", DEFAULT_MEMORY_TARGET_BYTES / 1e6, 0) * 1e6,
    pathMap: parsePathMaps(values["path-map"] ?? []),
    host: values.host,
    drain: drain.signal,
  });
  // maxRSS is in KiB: the worker's peak resident memory, for `bench/cluster-scaling.ts` and anyone sizing hosts.
  const peakRssBytes = process.resourceUsage().maxRSS * 1024;
  process.stdout.write(`${JSON.stringify({ event: "worker-summary", ...summary, peakRssBytes })}\n`);
  return 0;
}
