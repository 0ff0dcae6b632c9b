// Without a terminal, `imgd index` prints a progress line every few seconds and the final state once at the end.
import { afterEach, beforeEach, expect, test } from "bun:test";
import { progressReporter } from "../../src/cli/progress-output.ts";
import type { ProgressSnapshot } from "../../src/engine/progress.ts";

let lines: string[] = [];
const write = process.stderr.write;
const ci = process.env.CI;
beforeEach(() => {
  lines = [];
  // As in CI or a pipe: plain lines, whatever the terminal running the tests.
  process.env.CI = "true";
  process.stderr.write = ((chunk: string) => (lines.push(...chunk.split("\n").filter(Boolean)), true)) as typeof process.stderr.write;
});
afterEach(() => {
  process.stderr.write = write;
  if (ci === undefined) delete process.env.CI;
  else process.env.CI = ci;
});

const snapshot = (done: number, elapsedMs: number): ProgressSnapshot => ({ done, total: 4, failed: 0, elapsedMs, rate: 2, averageRate: 2, etaMs: 0 });

test("the final state is printed once when the last update already printed it", () => {
  const progress = progressReporter("index", { plainEveryMs: 0 });
  progress.update(snapshot(2, 1000));
  progress.update(snapshot(4, 2000));
  progress.finish();
  expect(lines).toEqual(["[index] 2/4 50.0% 2.0 img/s elapsed 0:01 eta 0:00", "[index] 4/4 100.0% 2.0 img/s elapsed 0:02 eta 0:00"]);
});

test("the final state is printed at the end when no tick printed it", () => {
  const progress = progressReporter("index", { plainEveryMs: Number.POSITIVE_INFINITY });
  progress.update(snapshot(4, 2000));
  progress.update(snapshot(4, 3000));
  progress.finish();
  expect(lines).toEqual(["[index] 4/4 100.0% 2.0 img/s elapsed 0:03 eta 0:00"]);
});
