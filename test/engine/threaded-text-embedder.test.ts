import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { TextEmbedder } from "../../src/engine/embed.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { ThreadedTextEmbedder } from "../../src/engine/threaded-text-embedder.ts";

describe("the text tower on a worker thread", () => {
  let model: ResolvedModel;
  let threaded: ThreadedTextEmbedder;
  let inThread: TextEmbedder;
  beforeAll(async () => {
    model = await resolveModel("test-clip", modelSearchDirs(join(import.meta.dir, "../../models")));
    [threaded, inThread] = await Promise.all([ThreadedTextEmbedder.open(model, { threads: 1 }), TextEmbedder.open(model, { threads: 1 })]);
  });
  afterAll(async () => {
    await threaded?.close();
    await inThread?.close();
  });

  test("gives the same vectors as the tower in this thread, for concurrent batches", async () => {
    const batches = [["a red apple", "blue sky"], ["green grass"], ["orange", "yellow", "purple flowers"]];
    const results = await Promise.all(batches.map((b) => threaded.embed(b)));
    for (const [i, texts] of batches.entries()) {
      const expected = await inThread.embed(texts);
      expect(results[i]!.length).toBe(texts.length * model.manifest.dims);
      for (let d = 0; d < expected.length; d++) expect(results[i]![d]!).toBeCloseTo(expected[d]!, 5);
    }
    expect(await threaded.embed([])).toHaveLength(0);
  });

  test("keeps this thread free while it runs: timers fire during a large batch, unlike in-thread", async () => {
    // Enough texts that the threaded run spans many timer turns even on a fast machine (512 once gave one tick).
    const texts = Array.from({ length: 4096 }, (_, i) => `a photo of thing number ${i} in colour ${i % 7}`);
    const ticksDuring = async (tower: { embed(t: string[]): Promise<Float32Array> }) => {
      let ticks = 0;
      const timer = setInterval(() => ticks++, 0);
      await tower.embed(texts);
      clearInterval(timer);
      return ticks;
    };
    await threaded.embed(texts); // the tokenizer loads on first use
    await inThread.embed(texts);
    // In this thread the run blocks timers from start to end; at most the await boundaries let one through.
    const blocked = await ticksDuring(inThread);
    expect(blocked).toBeLessThanOrEqual(2);
    expect(await ticksDuring(threaded)).toBeGreaterThan(blocked);
  });
});
