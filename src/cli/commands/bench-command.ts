import { resolve } from "node:path";
import { runIngestLoad, type IngestProgress, type IngestSummary } from "../../bench-client/ingest-load.ts";
import { intFlag, noArguments, parse } from "../args.ts";
import { UsageError } from "../usage.ts";

/**
 * `imgd bench ingest --dir DIR --url URL [--workers 16] [--batch 64] [--queue 1024] [--report 10] [--duration S]
 * [--token T] [--json]`
 */
export async function run(argv: string[]): Promise<number> {
  const [what, ...rest] = argv;
  if (what !== "ingest") throw new UsageError(what ? `unknown benchmark "${what}"; try: imgd bench ingest` : "bench needs a benchmark: ingest");
  const { values, positionals } = parse(rest, {
    dir: { type: "string" },
    url: { type: "string" },
    workers: { type: "string" },
    batch: { type: "string" },
    queue: { type: "string" },
    report: { type: "string" },
    duration: { type: "string" },
    token: { type: "string" },
    json: { type: "boolean" },
  });
  noArguments(positionals, "bench ingest", values.dir ? undefined : "--dir");
  if (!values.dir) throw new UsageError("bench ingest needs --dir DIR (the images to upload)");
  if (!values.url) throw new UsageError("bench ingest needs --url URL (a running imgd serve, e.g. http://127.0.0.1:8080)");
  const batch = intFlag(values.batch, "batch", 64);
  const summary = await runIngestLoad({
    dir: resolve(values.dir),
    url: values.url,
    workers: intFlag(values.workers, "workers", 16),
    batch,
    queue: intFlag(values.queue, "queue", 1024, batch),
    reportEverySec: intFlag(values.report, "report", 10),
    durationSec: values.duration === undefined ? undefined : intFlag(values.duration, "duration", 1),
    token: values.token ?? (process.env.IMGD_TOKEN || undefined),
    // With --json, stdout carries only the summary; progress goes to stderr.
    onReport: (p) => (values.json ? process.stderr : process.stdout).write(`${progressLine(p)}\n`),
  });
  if (values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(summaryText(summary));
  return summary.requests.failed === 0 ? 0 : 1;
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
const ms = (v: number) => (Number.isNaN(v) ? "-" : `${v.toFixed(0)} ms`);

function progressLine(p: IngestProgress): string {
  return (
    `[bench ingest] ${p.elapsedSec.toFixed(0)}s  ${p.images} img  ${p.imgPerSec.toFixed(1)} img/s  ${p.reqPerSec.toFixed(2)} req/s` +
    `  batch p50 ${ms(p.p50Ms)} p99 ${ms(p.p99Ms)}  failed ${p.failed}` +
    (p.serverRssBytes === null ? "" : `  server rss ${mib(p.serverRssBytes)}`)
  );
}

function summaryText(s: IngestSummary): string {
  const rss = s.serverRss;
  return [
    `ingest benchmark: ${s.files} files, ${s.requests.sent} requests of up to ${s.batchSize} images in ${s.elapsedSec.toFixed(1)} s`,
    `  throughput     ${s.imgPerSec.toFixed(1)} img/s, ${s.reqPerSec.toFixed(2)} req/s`,
    `  batch latency  p50 ${ms(s.latencyMs.p50)}  p95 ${ms(s.latencyMs.p95)}  p99 ${ms(s.latencyMs.p99)}  max ${ms(s.latencyMs.max)}`,
    `  success rate   ${(100 * s.successRate).toFixed(1)} % (${s.requests.ok} ok, ${s.requests.failed} failed; ${s.requests.throttled} answered 429 and were retried; ${s.requests.cutOff} cut off at the deadline)`,
    `  images         ${s.images.sent} sent, ${s.images.answered} answered: ${s.images.processed} indexed, ${s.images.duplicates} exact duplicates, ${s.images.nearDuplicates} near duplicates, ${s.images.errors} errors`,
    rss
      ? `  server rss     start ${mib(rss.startBytes)}  peak ${mib(rss.peakBytes)}  end ${mib(rss.endBytes)} (${rss.samples} samples of /metrics)`
      : "  server rss     unknown (/metrics has no process_resident_memory_bytes)",
    ...s.failures.map((f) => `  failure: ${f}`),
    "",
  ].join("\n");
}
