// One-line progress for a terminal, rendered from a plain snapshot (no terminal access here).
import { formatDuration, type ProgressSnapshot } from "../engine/progress.ts";

export function renderProgressBar(label: string, p: ProgressSnapshot, width = 30): string {
  const fraction = p.total > 0 ? Math.min(1, p.done / p.total) : 1;
  const filled = Math.round(fraction * width);
  const bar = `${"█".repeat(filled)}${"░".repeat(width - filled)}`;
  const failed = p.failed > 0 ? ` ${p.failed} failed` : "";
  return `${label} ${bar} ${p.done}/${p.total} ${(fraction * 100).toFixed(1)}% ${p.rate.toFixed(1)} img/s eta ${formatDuration(p.etaMs)}${failed}`;
}
