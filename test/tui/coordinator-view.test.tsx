import { expect, test } from "bun:test";
import { render } from "ink";
import { Writable } from "node:stream";
import type { JobStatus } from "../../src/cluster-net/protocol.ts";
import { CoordinatorView, type CoordinatorViewState } from "../../src/tui/coordinator-view.tsx";
import { formatStatusLine, plainStatusLog } from "../../src/cluster-net/coordinator-plain.ts";

/** A real Writable that keeps what Ink last wrote, as a terminal of `columns` would show it. */
class TerminalCapture extends Writable {
  columns = 140;
  rows = 40;
  isTTY = false;
  frames: string[] = [];
  override _write(chunk: Buffer, _enc: string, done: () => void) {
    this.frames.push(chunk.toString());
    done();
  }
}

function renderToString(state: CoordinatorViewState): string {
  const stdout = new TerminalCapture();
  const app = render(<CoordinatorView state={state} />, { stdout: stdout as unknown as NodeJS.WriteStream, debug: true, patchConsole: false });
  app.unmount();
  // Strip colours: the test reads the text a user sees.
  return stdout.frames.filter((f) => f.trim() !== "").at(-1)!.replace(/\x1b\[[0-9;]*m/g, "");
}

const status: JobStatus = {
  protocol: 1,
  jobId: "3f2a9c1e-0000-0000-0000-000000000000",
  phase: "indexing",
  paused: false,
  total: 1000,
  done: 250,
  failed: 3,
  batches: { queued: 10, leased: 2, committed: 5 },
  rate: 42.5,
  averageRate: 40,
  elapsedMs: 61_000,
  etaMs: 18_000,
  workers: [
    { id: "alpha-1", host: "alpha", pid: 10, threads: 2, state: "working", rateNow: 30.25, rateAverage: 28, done: 200, inFlight: 50, errors: 3, rssBytes: 512 * 2 ** 20, heartbeatAgeMs: 400, batchSize: 32, note: null },
    { id: "beta-2", host: "beta", pid: 11, threads: 1, state: "lost", rateNow: 0, rateAverage: 12, done: 50, inFlight: 0, errors: 0, rssBytes: 300 * 2 ** 20, heartbeatAgeMs: 9_500, batchSize: 16, note: null },
  ],
};

test("the coordinator view shows one row per worker and the totals", () => {
  const out = renderToString({ status, selected: 0, events: ["worker beta-2 lost: no heartbeat for 5.0 s"], quitNote: "quit: workers finish their current batch and stop" });
  const lines = out.split("\n");
  expect(lines[0]).toContain("job 3f2a9c1e · indexing");
  expect(lines[1]).toMatch(/^worker\s+host\s+state\s+img\/s\s+avg\s+done\s+flight\s+err\s+rss\s+beat/);
  expect(lines[2]).toMatch(/^alpha-1\s+alpha\s+working\s+30\.3\s+28\.0\s+200\s+50\s+3\s+512M\s+0\.4s/);
  expect(lines[3]).toMatch(/^beta-2\s+beta\s+lost\s+0\.0\s+12\.0\s+50\s+0\s+0\s+300M\s+9\.5s/);
  expect(out).toContain("total 250/1000 25.0% · 42.5 img/s · elapsed 1:01 · eta 0:18 · 3 failed");
  expect(out).toContain("worker beta-2 lost");
  expect(out).toContain("p pause dispatch · q quit: workers finish their current batch and stop");
});

test("a paused job says so and offers resume", () => {
  const out = renderToString({ status: { ...status, paused: true }, selected: 1, events: [], quitNote: "x" });
  expect(out.split("\n")[0]).toContain("PAUSED");
  expect(out).toContain("p resume dispatch");
});

test("without workers the view says how to start one", () => {
  const out = renderToString({ status: { ...status, workers: [] }, selected: 0, events: [], quitNote: "x" });
  expect(out).toContain("waiting for workers");
});

test("when every worker is lost or gone with work left, the view and the plain line say it waits for workers", () => {
  const stranded = { ...status, workers: status.workers.map((w) => ({ ...w, state: "lost" as const, rateNow: 0 })) };
  expect(renderToString({ status: stranded, selected: 0, events: [], quitNote: "x" })).toContain("waiting for workers (imgd worker --coordinator URL");
  expect(formatStatusLine(stranded)).toEndWith("| alpha-1 lost 0.0/s, beta-2 lost 0.0/s; waiting for workers");
  expect(formatStatusLine({ ...status, workers: [] })).toEndWith("| waiting for workers");
  // Merging needs no worker: nothing to wait for.
  const merging = { ...stranded, phase: "merging" as const };
  expect(renderToString({ status: merging, selected: 0, events: [], quitNote: "x" })).not.toContain("waiting for workers");
  expect(formatStatusLine(merging)).toEndWith("| alpha-1 lost 0.0/s, beta-2 lost 0.0/s");
});

test("the plain progress line carries the same totals and worker states", () => {
  const line = formatStatusLine(status);
  expect(line).toBe("[cluster] 250/1000 25.0% 42.5 img/s elapsed 1:01 eta 0:18 failed 3 | alpha-1 working 30.3/s, beta-2 lost 0.0/s");
});

test("the plain log prints a line per tick while the job moves, one a minute while it waits, none after the merge", () => {
  const log = plainStatusLog(60_000);
  const at = (s: JobStatus, now: number) => log({ ...s, elapsedMs: now }, now) !== null;
  expect(at(status, 0)).toBe(true);
  expect(at({ ...status, done: 260 }, 2_000)).toBe(true);
  // Only the elapsed time moved: quiet until a minute has passed.
  expect(at({ ...status, done: 260 }, 4_000)).toBe(false);
  expect(at({ ...status, done: 260 }, 61_000)).toBe(false);
  expect(at({ ...status, done: 260 }, 62_000)).toBe(true);
  const merged = { ...status, phase: "merged" as const, done: 1000, rate: 0, etaMs: 0 };
  expect(at(merged, 64_000)).toBe(true);
  expect(at(merged, 66_000)).toBe(false);
  expect(at(merged, 600_000)).toBe(false);
});
