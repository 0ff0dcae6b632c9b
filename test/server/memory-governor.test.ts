// The memory governor collects only while resident memory is above its target.
import { expect, test } from "bun:test";
import { governMemory } from "../../src/server/memory-governor.ts";

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

test("a collection returns dead JS objects: the heap in use drops after one runs", async () => {
  let garbage: unknown[] | null = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `garbage ${i}` }));
  const before = process.memoryUsage().heapUsed;
  garbage = null;
  const governor = governMemory(0, 10);
  try {
    while (governor.collections === 0) await Bun.sleep(5);
  } finally {
    governor.stop();
  }
  expect(garbage).toBeNull();
  expect(process.memoryUsage().heapUsed).toBeLessThan(before - 5 * 2 ** 20);
});
