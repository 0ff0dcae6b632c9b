import { describe, expect, test } from "bun:test";
import { formatDuration, formatProgressLine, ProgressModel } from "../../src/engine/progress.ts";

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe("progress model", () => {
  test("a steady rate gives an ETA equal to remaining work over that rate", () => {
    const c = clock();
    const p = new ProgressModel(1000, 10_000, c.now);
    for (let i = 0; i < 60; i++) {
      c.advance(1000);
      p.advance(10);
    }
    const s = p.snapshot();
    expect(s.done).toBe(600);
    expect(s.rate).toBeCloseTo(10, 5);
    expect(s.etaMs! / 1000).toBeCloseTo(40, 3);
  });

  test("the smoothed rate settles on a new speed instead of jumping on one slow interval", () => {
    const c = clock();
    const p = new ProgressModel(100_000, 10_000, c.now);
    for (let i = 0; i < 30; i++) {
      c.advance(1000);
      p.advance(20);
    }
    c.advance(1000);
    p.advance(0);
    expect(p.snapshot().rate).toBeGreaterThan(15);
    for (let i = 0; i < 120; i++) {
      c.advance(1000);
      p.advance(5);
    }
    expect(p.snapshot().rate).toBeCloseTo(5, 0);
  });

  test("the wait before the first progress (models loading, workers registering) does not drag the rate down", () => {
    const c = clock();
    const p = new ProgressModel(10_000, 10_000, c.now);
    c.advance(40_000);
    p.advance(64);
    for (let i = 0; i < 5; i++) {
      c.advance(800);
      p.advance(64);
    }
    // 80 img/s from the first batch on; counting the 40 s wait as an interval started the average at 1.6 img/s.
    expect(p.snapshot().rate).toBeCloseTo(80, 5);
    expect(p.snapshot().averageRate).toBeLessThan(10);
  });

  test("no ETA is claimed before any work is done, and zero once everything is done", () => {
    const c = clock();
    const p = new ProgressModel(10, 10_000, c.now);
    expect(p.snapshot().etaMs).toBeNull();
    c.advance(500);
    p.advance(10);
    expect(p.snapshot().etaMs).toBe(0);
  });

  test("the plain progress line has the format users grep for", () => {
    const line = formatProgressLine("index", {
      done: 76255,
      total: 270798,
      failed: 0,
      elapsedMs: 3723_000,
      rate: 12.3,
      averageRate: 20,
      etaMs: 15790_000,
    });
    expect(line).toBe("[index] 76255/270798 28.2% 12.3 img/s elapsed 1:02:03 eta 4:23:10");
  });

  test("durations format as m:ss below an hour and h:mm:ss above", () => {
    expect(formatDuration(59_400)).toBe("0:59");
    expect(formatDuration(3_600_000)).toBe("1:00:00");
    expect(formatDuration(null)).toBe("--:--");
  });
});
