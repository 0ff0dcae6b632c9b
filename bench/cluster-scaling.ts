// Cluster figures on this machine: throughput of 1 worker x 2 threads against 2 workers x 1 thread (real
// processes on 127.0.0.1), the coordinator's share of each batch, and how long a SIGKILLed worker's batch takes to
// be re-leased and committed by a survivor, and each run's worker peak RSS.
// bun bench/cluster-scaling.ts [--images 600] [--side 256] [--batch 32] [--worker-batch 8] [--model test-clip|clip-q8-cost]
// clip-q8-cost (ViT-B/32's int8 towers at their real size) shows what a worker holds with a real image tower.
import { join } from "node:path";
import { flag, loadNote } from "./fixtures.ts";
import { modelsDirFor } from "./load.ts";
import { fetchStatus, makePhotos, startCoordinatorProc, startWorkerProc, tempDir, until, type Proc } from "../test/cluster-net/cluster-harness.ts";

const images = Number(flag("--images", "600"));
const side = Number(flag("--side", "256"));
const batch = flag("--batch", "32");
const model = flag("--model", "test-clip");
/** Images per inference batch inside each worker (its own --batch); the lease size is --batch. */
const workerBatch = flag("--worker-batch", "8");
const modelArgs = model === "test-clip" ? [] : ["--model", model, "--models", modelsDirFor(model)];
const root = tempDir("bench");
const photos = join(root, "photos");
await makePhotos(photos, images, side);

interface Run {
  label: string;
  seconds: number;
  rate: number;
  meshMsPerBatch: number;
  overheadPct: number;
  serverMsPerBatch: number;
  cpuMsPerBatch: number;
  batchMs: number;
  /** The largest peak resident memory among the run's workers (model loading included). */
  workerPeakMiB: number;
  /** Median of the workers' resident memory as their heartbeats report it while indexing. */
  workerRssMiB: number;
}

async function timingsOf(url: string): Promise<Record<string, { count: number; ms: number }>> {
  const res = await fetch(`${url}/v1/timings`, { headers: { authorization: "Bearer test-token-0123456789" } });
  return (await res.json()) as Record<string, { count: number; ms: number }>;
}

async function run(label: string, workers: number, threads: number, n: number): Promise<Run> {
  const storage = join(root, `storage-${label}-${n}`);
  const { p, url } = await startCoordinatorProc([photos], storage, ["--batch", batch, "--lease-ttl", "10", ...modelArgs]);
  await fetch(`${url}/v1/control`, { method: "POST", headers: { authorization: "Bearer test-token-0123456789" }, body: JSON.stringify({ action: "pause" }) });
  const procs = Array.from({ length: workers }, () => startWorkerProc(url, ["--threads", String(threads), "--batch", workerBatch, ...modelArgs.slice(2)]));
  // Workers load their model while dispatch is paused, so start-up is not timed.
  await until(async () => (await fetchStatus(url)).workers.filter((w) => w.state === "idle").length === workers, 30_000, "workers idle");
  await Bun.sleep(300);
  const cpu0 = await timingsOf(url);
  const t0 = performance.now();
  await fetch(`${url}/v1/control`, { method: "POST", headers: { authorization: "Bearer test-token-0123456789" }, body: JSON.stringify({ action: "resume" }) });
  // Waiting on the coordinator's own log line, not by polling its status, keeps the bench off its CPU; only the
  // workers' RSS (from their heartbeats) is read, once a second.
  const rss: number[] = [];
  const sampler = setInterval(async () => {
    const status = await fetchStatus(url).catch(() => null);
    for (const w of status?.workers ?? []) if (w.state === "working" && w.rssBytes) rss.push(w.rssBytes / 2 ** 20);
  }, 1000);
  await p.waitFor(/all \d+ files committed/, 600_000);
  clearInterval(sampler);
  rss.sort((a, b) => a - b);
  const seconds = (performance.now() - t0) / 1000;
  const timings = await timingsOf(url);
  const serverMs = ["lease", "commit", "heartbeat"].reduce((a, k) => a + (timings[k]?.ms ?? 0), 0);
  const cpuMs = timings.process!.ms - cpu0.process!.ms;
  await p.exited;
  const summaries = await Promise.all(procs.map(async (w) => (await w.exited, JSON.parse(w.stdout.find((l) => l.includes("worker-summary"))!))));
  const mesh = summaries.reduce((a, s) => a + s.meshMs, 0);
  const busy = summaries.reduce((a, s) => a + s.batchMs, 0);
  const batches = summaries.reduce((a, s) => a + s.batches, 0);
  return {
    label,
    seconds,
    rate: images / seconds,
    meshMsPerBatch: mesh / batches,
    overheadPct: (100 * mesh) / (mesh + busy),
    serverMsPerBatch: serverMs / batches,
    cpuMsPerBatch: cpuMs / batches,
    batchMs: busy / batches,
    workerPeakMiB: Math.max(...summaries.map((s) => s.peakRssBytes / 2 ** 20)),
    workerRssMiB: rss[rss.length >> 1] ?? Number.NaN,
  };
}

console.log(`cluster scaling: ${images} JPEGs ${side}x${side}, batch ${batch} (worker inference batch ${workerBatch}), ${model}; ${loadNote()}`);
const rows: Run[] = [];
for (let rep = 0; rep < 2; rep++) {
  rows.push(await run("1 worker x 2 threads", 1, 2, rep));
  rows.push(await run("2 workers x 1 thread", 2, 1, rep));
}
for (const r of rows) {
  console.log(
    `${r.label.padEnd(22)} ${r.seconds.toFixed(2).padStart(6)} s  ${r.rate.toFixed(1).padStart(6)} img/s  worker waits on coordinator ${r.meshMsPerBatch.toFixed(1)} ms/batch (${r.overheadPct.toFixed(2)} % of batch time); coordinator CPU ${r.cpuMsPerBatch.toFixed(1)} ms/batch (${((100 * r.cpuMsPerBatch) / r.batchMs).toFixed(2)} % of a ${r.batchMs.toFixed(0)} ms batch; handler wall ${r.serverMsPerBatch.toFixed(1)} ms); worker RSS while indexing ${Number.isNaN(r.workerRssMiB) ? "- (no heartbeat while working: a short run)" : `${r.workerRssMiB.toFixed(0)} MiB`}, peak ${r.workerPeakMiB.toFixed(0)} MiB`,
  );
}
const best = (label: string) => Math.max(...rows.filter((r) => r.label === label).map((r) => r.rate));
console.log(`efficiency (2x1 vs 1x2, best of 2): ${(best("2 workers x 1 thread") / best("1 worker x 2 threads")).toFixed(2)}`);

// Recovery: SIGKILL a worker mid-batch; time until its batch is re-queued, and until a survivor commits it.
{
  const storage = join(root, "storage-recovery");
  const ttl = 2;
  // The victim must commit a batch and be inside its next one: with few images, smaller leases give it that many.
  const recoveryBatch = String(Math.max(1, Math.min(Number(batch), Math.floor(images / 8))));
  const { p, url } = await startCoordinatorProc([photos], storage, ["--batch", recoveryBatch, "--lease-ttl", String(ttl), "--serve"]);
  const victim = startWorkerProc(url);
  const survivor = startWorkerProc(url);
  try {
    const victimId = (await victim.waitFor(/registered as/)).match(/registered as (\S+)/)![1]!;
    await until(async () => (await fetchStatus(url)).workers.find((w) => w.id === victimId && w.done > 0 && w.inFlight > 0), 60_000, "victim mid-batch");
    victim.proc.kill("SIGKILL");
    const killed = performance.now();
    const requeued = await p.waitFor(new RegExp(`back in the queue: lease of ${victimId} expired`), 60_000);
    const requeuedMs = performance.now() - killed;
    const batchId = requeued.match(/batch (\d+)/)![1];
    await survivor.waitFor(new RegExp(`batch ${batchId}: `), 60_000);
    const recommittedMs = performance.now() - killed;
    console.log(
      `recovery (lease TTL ${ttl} s, leases of ${recoveryBatch}): SIGKILL -> batch ${batchId} re-queued ${(requeuedMs / 1000).toFixed(2)} s -> committed by the survivor ${(recommittedMs / 1000).toFixed(2)} s`,
    );
  } finally {
    // A coordinator run with --serve never exits on its own: left running, it would outlive a failed run.
    for (const x of [p, victim, survivor] as Proc[]) x.proc.kill("SIGKILL");
  }
}
