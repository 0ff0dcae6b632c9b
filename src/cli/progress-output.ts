// How a long job reports progress: a redrawn bar on a TTY, otherwise a plain line every few seconds.
import { formatProgressLine, type ProgressSnapshot } from "../engine/progress.ts";
import { renderProgressBar } from "../tui/progress-bar.ts";

export function progressReporter(label: string, opts: { plainEveryMs?: number; quiet?: boolean } = {}) {
  const tty = process.stderr.isTTY === true && !process.env.CI;
  let lastPlain = 0;
  let lastLine = "";
  let latest: ProgressSnapshot | undefined;
  return {
    update(p: ProgressSnapshot) {
      latest = p;
      if (opts.quiet) return;
      if (tty) {
        process.stderr.write(`\r\x1b[2K${renderProgressBar(label, p, Math.max(10, (process.stderr.columns ?? 100) - 70))}`);
      } else if (performance.now() - lastPlain >= (opts.plainEveryMs ?? 5000)) {
        lastPlain = performance.now();
        lastLine = formatProgressLine(label, p);
        process.stderr.write(`${lastLine}\n`);
      }
    },
    finish() {
      if (opts.quiet || !latest) return;
      if (tty) return void process.stderr.write("\n");
      const line = formatProgressLine(label, latest);
      // The final update may have fallen on a tick and printed this line already.
      if (line !== lastLine) process.stderr.write(`${line}\n`);
    },
  };
}
