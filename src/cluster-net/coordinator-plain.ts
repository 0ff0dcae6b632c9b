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

/**
 * Which status lines a log gets: a line every tick while the job moves, one a minute while it only waits (no
 * workers, a pause), and none once merged. `coordinator --serve` runs for days after its merge, and a line every
 * 2 s that says the same thing buries the log.
 */
export function plainStatusLog(quietMs = 60_000) {
  let last = "";
  let lastAt = -Infinity;
  let merged = false;
  return (s: JobStatus, now = Date.now()): string | null => {
    if (merged) return null;
    const line = formatStatusLine(s);
    // Elapsed time alone changes every tick; it does not make a line worth printing.
    const gist = line.replace(/ elapsed \S+/, "");
    if (s.phase !== "merged" && gist === last && now - lastAt < quietMs) return null;
    merged = s.phase === "merged";
    last = gist;
    lastAt = now;
    return line;
  };
}
