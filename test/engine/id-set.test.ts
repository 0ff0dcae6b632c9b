import { expect, test } from "bun:test";
import { IdSet } from "../../src/engine/store/id-set.ts";
import { mulberry32 } from "../../src/engine/seeded-random.ts";

test("IdSet answers as a Set of the same ids would, across growth and repeats", () => {
  const rand = mulberry32(3);
  const ids = new IdSet();
  const reference = new Set<number>();
  for (let i = 0; i < 5000; i++) {
    const id = 1 + Math.floor(rand() * (i < 2500 ? 3000 : 2_000_000));
    ids.add(id);
    reference.add(id);
  }
  expect(ids.size).toBe(reference.size);
  expect(ids.ids()).toEqual([...reference].sort((a, b) => a - b));
  for (let id = 0; id < 5000; id++) expect(ids.has(id)).toBe(reference.has(id));
  expect(ids.has(3_000_000)).toBe(false);
});
