// The memory governor collects only while resident memory is above its target.
import { expect, test } from "bun:test";
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
