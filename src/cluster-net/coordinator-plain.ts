// The coordinator's output without a terminal (CI, pipes, logs): one progress line every few seconds, with a
// compact per-worker summary, built from the same status object the TUI renders.
import { formatProgressLine } from "../engine/progress.ts";
import { waitingForWorkers, type JobStatus } from "./protocol.ts";

export function formatStatusLine(s: JobStatus): string {
  const total = formatProgressLine("cluster", {
    done: s.done,
    total: s.total,
    failed: s.failed,
    elapsedMs: s.elapsedMs,
    rate: s.rate,
    averageRate: s.averageRate,
    etaMs: s.etaMs,
  });
  const workers = s.workers
    .filter((w) => w.state !== "gone")
    .map((w) => `${w.id} ${w.state} ${w.rateNow.toFixed(1)}/s`)
    .join(", ");
  const waiting = waitingForWorkers(s) ? "waiting for workers" : "";
  return `${total}${s.paused ? " PAUSED" : ""} | ${[workers, waiting].filter(Boolean).join("; ") || "no workers"}`;
}
