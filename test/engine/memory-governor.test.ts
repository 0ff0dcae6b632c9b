// The memory governor collects only while resident memory is above its target.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { decodeImage } from "../../src/engine/decode.ts";
import { heicThreadCounts } from "../../src/engine/heic-decoder.ts";
import { governMemory } from "../../src/engine/memory-governor.ts";

test("above the target it runs a full collection each interval; at or below it, none", async () => {
  let rss = 500;
  const governor = governMemory(400, 10, () => rss);
  try {
    await Bun.sleep(60);
    const above = governor.collections;
    expect(above).toBeGreaterThanOrEqual(2);
    rss = 400;
    await Bun.sleep(15);
    const settled = governor.collections;
    await Bun.sleep(60);
    expect(governor.collections).toBe(settled);
  } finally {
    governor.stop();
  }
});

test("its collection frees what nothing references any more", async () => {
  const made = () => new WeakRef({ rows: Array.from({ length: 10_000 }, (_, i) => `row ${i}`) });
  const ref = made();
  // WeakRef targets live until the job that made them ends.
  await Bun.sleep(0);
  const governor = governMemory(0, 10);
  try {
    while (governor.collections === 0) await Bun.sleep(5);
  } finally {
    governor.stop();
  }
  expect(ref.deref()).toBeUndefined();
});

test("above the target it ends the HEIC decoding threads idle since its last look, and no others", async () => {
  const heic = join(import.meta.dir, "../fixtures/heic/photo.heic");
  await decodeImage(heic);
  let rss = 500;
  const interval = 300;
  const start = performance.now();
  const until = (ms: number) => Bun.sleep(Math.max(0, start + ms - performance.now()));
  const governor = governMemory(400, interval, () => rss);
  try {
    // Done well before the first look, so idle for less than an interval then (as an index run's thread between two
    // files): kept. Idle for more than one at the second look: ended.
    await decodeImage(heic);
    const ended = heicThreadCounts.ended;
    await until(interval * 1.5);
    expect(heicThreadCounts.ended).toBe(ended);
    await until(interval * 2.5);
    expect(heicThreadCounts.ended).toBeGreaterThan(ended);
    // Under the target, a thread is left to its own idle timer.
    rss = 300;
    await decodeImage(heic);
    const now = heicThreadCounts.ended;
    await Bun.sleep(interval * 1.5);
    expect(heicThreadCounts.ended).toBe(now);
  } finally {
    governor.stop();
  }
});
