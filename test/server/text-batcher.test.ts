import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { TextEmbedder } from "../../src/engine/embed.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { QueryEmbeddings } from "../../src/engine/query-embeddings.ts";
import { TextBatcher } from "../../src/engine/text-batcher.ts";
import { MODELS } from "./server-harness.ts";

describe("micro-batching of text queries", () => {
  let embedder: TextEmbedder;
  let dims: number;
  beforeAll(async () => {
    const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
    embedder = await TextEmbedder.open(model, { threads: 1 });
    dims = model.manifest.dims;
  });
  afterAll(() => embedder?.close());

  const TEXTS = ["orange", "a red apple", "yellow", "green grass", "blue sky", "a brown cat", "orange", "purple"];

  test("concurrent texts share model runs and each caller gets exactly its own vector", async () => {
    const batcher = new TextBatcher(embedder, { dims, maxWaitMs: 5, maxBatch: 32 });
    const batched = await Promise.all(TEXTS.map((t) => batcher.embed(t)));
    expect(batcher.batches).toBe(1);
    expect(batcher.texts).toBe(new Set(TEXTS).size);
    for (const [i, text] of TEXTS.entries()) {
      const alone = await embedder.embed([text]);
      expect(batched[i]!.length).toBe(dims);
      for (let d = 0; d < dims; d++) expect(batched[i]![d]!).toBeCloseTo(alone[d]!, 5);
    }
  });

  test("a full batch goes at once, and texts arriving during a run go together right after it", async () => {
    const batcher = new TextBatcher(embedder, { dims, maxWaitMs: 1000, maxBatch: 3 });
    const t0 = performance.now();
    await Promise.all(["a", "b", "c", "d", "e", "f", "g"].map((t) => batcher.embed(t)));
    expect(batcher.batches).toBe(3);
    expect(batcher.texts).toBe(7);
    expect(performance.now() - t0).toBeLessThan(500);
  });

  test("with a zero wait every text runs on its own", async () => {
    const batcher = new TextBatcher(embedder, { dims, maxWaitMs: 0 });
    await Promise.all(["a", "b", "c"].map((t) => batcher.embed(t)));
    expect(batcher.batches).toBe(3);
  });

  test("the query cache treats case and spacing as the same query and skips the model on a hit", async () => {
    const batcher = new TextBatcher(embedder, { dims, maxWaitMs: 0 });
    const queries = new QueryEmbeddings(batcher, 2);
    const a = await queries.embedText("A  Red Apple");
    const b = await queries.embedText("a red apple ");
    expect(b).toBe(a);
    expect(batcher.batches).toBe(1);
    expect(queries.cache.hits).toBe(1);
    await queries.embedText("x");
    await queries.embedText("y");
    await queries.embedText("a red apple");
    expect(batcher.batches).toBe(4);
  });
});

describe("a failing text in a shared batch", () => {
  test("fails only its own caller; the texts batched with it still get their vectors", async () => {
    const picky = {
      calls: 0,
      async embed(texts: string[]) {
        this.calls++;
        if (texts.includes("poison")) throw new Error("cannot tokenize poison");
        return new Float32Array(texts.flatMap((t) => [t.length, 1]));
      },
    };
    const batcher = new TextBatcher(picky, { dims: 2, maxWaitMs: 5 });
    const results = await Promise.allSettled(["ok", "poison", "fine"].map((t) => batcher.embed(t)));
    expect(results.map((r) => r.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
    expect((results[0] as PromiseFulfilledResult<Float32Array>).value).toEqual(new Float32Array([2, 1]));
    expect((results[2] as PromiseFulfilledResult<Float32Array>).value).toEqual(new Float32Array([4, 1]));
    expect(picky.calls).toBe(4);
  });
});
