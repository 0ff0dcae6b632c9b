// The one progress/ETA model: the rate is an exponential moving average of per-interval throughput, weighted by
// elapsed time so it settles within ~30 s of steady work and does not jump when one slow batch lands. Intervals
// start at the first progress: the time before it (models loading, workers registering) is not work, and counted as
// an interval it started the average far below the real speed, which took half a minute to climb back.

export interface ProgressSnapshot {
  done: number;
  total: number;
  failed: number;
  elapsedMs: number;
  /** Smoothed items per second; the whole-run average until an interval after the first progress completes. */
  rate: number;
  /** Whole-run average items per second. */
  averageRate: number;
  etaMs: number | null;
}

export class ProgressModel {
  private done = 0;
  private failed = 0;
  private rate = 0;
  /** Where the current interval began; null until the first progress. */
  private lastAt: number | null = null;
  private lastDone = 0;
  private readonly startedAt: number;

  constructor(
    private total: number,
    private readonly halfLifeMs = 10_000,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
  }

  setTotal(total: number): void {
    this.total = total;
  }

  advance(count: number, failed = 0): void {
    this.done += count;
    this.failed += failed;
    const at = this.now();
    if (this.lastAt === null) {
      this.lastAt = at;
      this.lastDone = this.done;
      return;
    }
    const dt = at - this.lastAt;
    if (dt < 250) return;
    const instant = ((this.done - this.lastDone) * 1000) / dt;
    const keep = this.rate === 0 ? 0 : Math.pow(0.5, dt / this.halfLifeMs);
    this.rate = keep * this.rate + (1 - keep) * instant;
    this.lastAt = at;
    this.lastDone = this.done;
  }

  snapshot(): ProgressSnapshot {
    const elapsedMs = this.now() - this.startedAt;
    const averageRate = elapsedMs > 0 ? (this.done * 1000) / elapsedMs : 0;
    const rate = this.rate || averageRate;
    const remaining = Math.max(0, this.total - this.done);
    return {
      done: this.done,
      total: this.total,
      failed: this.failed,
      elapsedMs,
      rate,
      averageRate,
      etaMs: remaining === 0 ? 0 : rate > 0 ? (remaining / rate) * 1000 : null,
    };
  }
}

export function formatDuration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return "--:--";
  const s = Math.round(ms / 1000);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  const two = (n: number) => String(n).padStart(2, "0");
  return h > 0 ? `${h}:${two(m)}:${two(sec)}` : `${m}:${two(sec)}`;
}

/** `[index] 76255/270798 28.2% 12.3 img/s elapsed 1:02:03 eta 4:23:10` */
export function formatProgressLine(label: string, p: ProgressSnapshot): string {
  const pct = p.total > 0 ? ((p.done / p.total) * 100).toFixed(1) : "100.0";
  const failed = p.failed > 0 ? ` failed ${p.failed}` : "";
  return `[${label}] ${p.done}/${p.total} ${pct}% ${p.rate.toFixed(1)} img/s elapsed ${formatDuration(p.elapsedMs)} eta ${formatDuration(p.etaMs)}${failed}`;
}
