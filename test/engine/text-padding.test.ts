// Padding a batch of texts to its longest text instead of 77 tokens: exact for causal towers that pool at the
// end-of-text token, and never applied to a tower that needs 77.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generateTestClip } from "../../models/test/generate.ts";
import { generateTextCost, MACS_PER_TEXT, macsPerText, type TextTowerSizes } from "../../models/test/generate-text-cost.ts";
import { DataType, encodeModel, floatTensor } from "../../models/test/onnx-writer.ts";
import { TextEmbedder } from "../../src/engine/embed.ts";
import { BUILT_IN_MANIFESTS, parseManifest } from "../../src/engine/model-manifest.ts";
import { resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { tokenizerFor } from "../../src/engine/tokenizer.ts";
import type { TokenPadding } from "../../src/engine/types.ts";

/** Two causal blocks of width 64: the text-cost graph, small enough to build in a test. */
const TINY: TextTowerSizes = { layers: 2, width: 64, heads: 4, tableRows: 1021, dims: 64 };
const TEXTS = ["red", "a yellow car parked by the sea at sunset with two people", "a photo of a cat", "", "blue sky"];

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "imgd-text-padding-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function withPadding(model: ResolvedModel, padding: TokenPadding): ResolvedModel {
  return { ...model, manifest: { ...model.manifest, tokenizer: { ...model.manifest.tokenizer, padding } } };
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  expect(a.length).toBe(b.length);
  return a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
}

async function withEmbedder<T>(model: ResolvedModel, use: (e: TextEmbedder) => Promise<T>): Promise<T> {
  const embedder = await TextEmbedder.open(model, { threads: 1 });
  try {
    return await use(embedder);
  } finally {
    await embedder.close();
  }
}

/** The same texts through padding "longest" and "max_length", batched and one at a time. */
async function embedBothWays(model: ResolvedModel) {
  const longest = withPadding(model, "longest");
  const full = withPadding(model, "max_length");
  const batch = await withEmbedder(longest, (e) => e.embed(TEXTS));
  const singles = await withEmbedder(longest, async (e) => Promise.all(TEXTS.map((t) => e.embed([t]))));
  const padded77 = await withEmbedder(full, (e) => e.embed(TEXTS));
  return { batch, singles, padded77, dims: model.manifest.dims };
}

function expectSameEmbeddings({ batch, singles, padded77, dims }: Awaited<ReturnType<typeof embedBothWays>>): void {
  expect(maxAbsDiff(batch, padded77)).toBeLessThan(1e-5);
  singles.forEach((single, i) => expect(maxAbsDiff(single, batch.subarray(i * dims, (i + 1) * dims))).toBeLessThan(1e-5));
}

describe("a causal text tower pooled at the end-of-text token (text-cost graph, 2 layers of width 64)", () => {
  let model: ResolvedModel;
  beforeAll(async () => {
    generateTextCost(root, TINY);
    model = await resolveModel("text-cost", [root]);
  });

  test("its generated manifest asks for padding to the longest text", () => {
    expect(model.manifest.tokenizer.padding).toBe("longest");
    expect(model.manifest.dims).toBe(TINY.dims);
  });

  test("reports the full-size tower's cost at 77 tokens, about 3 GMACs, and a tenth of it at 8 tokens", () => {
    expect(MACS_PER_TEXT).toBe(macsPerText(77));
    expect(MACS_PER_TEXT / 1e9).toBeCloseTo(2.98, 2);
    expect(macsPerText(8) / MACS_PER_TEXT).toBeCloseTo(0.1, 1);
  });

  test("embeds a batch padded to its longest text as it embeds the batch padded to 77, and each text alone alike", async () => {
    const result = await embedBothWays(model);
    expectSameEmbeddings(result);
    // Not trivially equal: different texts land apart.
    const { batch, dims } = result;
    let dot = 0;
    for (let d = 0; d < dims; d++) dot += batch[d]! * batch[dims + d]!;
    expect(dot).toBeLessThan(0.99);
  });

  test("takes a text of the full 77 tokens, cut with the end token last", async () => {
    const long = ["cat ".repeat(100), "dog"];
    const a = await withEmbedder(withPadding(model, "longest"), (e) => e.embed(long));
    const b = await withEmbedder(withPadding(model, "max_length"), (e) => e.embed(long));
    expect(maxAbsDiff(a, b)).toBeLessThan(1e-5);
  });
});

describe("test-clip", () => {
  test("embeds a batch padded to its longest text as it embeds the batch padded to 77, and each text alone alike", async () => {
    generateTestClip(join(root, "test-clip"));
    const model = await resolveModel("test-clip", [root]);
    expect(model.manifest.tokenizer.padding).toBe("longest");
    expectSameEmbeddings(await embedBothWays(model));
  });
});

describe("padding max_length", () => {
  /** A text tower that only takes [batch, 77]: the ids as floats times a fixed matrix. */
  function fixedWidthModel(padding?: TokenPadding): ResolvedModel {
    const dir = join(root, "fixed-77");
    const textPath = join(dir, "text.onnx");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const weights = Float32Array.from({ length: 77 * 4 }, (_, i) => ((i * 7919) % 13) - 6);
    const bytes = encodeModel(
      {
        name: "fixed_77_text",
        inputs: [{ name: "input_ids", elemType: DataType.INT64, shape: ["batch", 77] }],
        outputs: [{ name: "text_embeds", elemType: DataType.FLOAT, shape: ["batch", 4] }],
        initializers: [floatTensor("w", [77, 4], weights)],
        nodes: [
          { opType: "Cast", inputs: ["input_ids"], outputs: ["ids"], attributes: { to: DataType.FLOAT } },
          { opType: "MatMul", inputs: ["ids", "w"], outputs: ["text_embeds"] },
        ],
      },
      { irVersion: 8, opset: 17, producerName: "imgd test" },
    );
    writeFileSync(textPath, bytes);
    const tokenizer = { kind: "clip-bpe", contextLength: 77, vocab: "bundled", ...(padding ? { padding } : {}) };
    const manifest = parseManifest(
      {
        ...BUILT_IN_MANIFESTS.find((m) => m.name === "test-clip")!,
        name: "fixed-77",
        dims: 4,
        image: { file: "image.onnx", input: "pixel_values", output: "image_embeds" },
        text: { file: "text.onnx", input: "input_ids", output: "text_embeds" },
        tokenizer,
      },
      "test",
    );
    return { manifest, dir, imagePath: join(dir, "image.onnx"), textPath };
  }

  test("is the default when a manifest does not say", () => {
    expect(fixedWidthModel().manifest.tokenizer.padding).toBe("max_length");
    expect(tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bundled" }).tokenize(["red"]).width).toBe(77);
  });

  test("still feeds 77-wide rows to a tower exported with a fixed [batch, 77] input", async () => {
    const out = await withEmbedder(fixedWidthModel(), (e) => e.embed(["red", "a photo of a cat"]));
    expect(out.length).toBe(2 * 4);
    expect(out.every(Number.isFinite)).toBe(true);
  });

  test("is what such a tower needs: padding to the longest text is refused by onnxruntime", async () => {
    await expect(withEmbedder(fixedWidthModel("longest"), (e) => e.embed(["red"]))).rejects.toThrow(/invalid dimensions for input: input_ids.*Got: 3 Expected: 77/s);
  });

  test("stays the setting of the built-in MobileCLIP-S0, whose text encoder is not causal", () => {
    const padding = (name: string) => BUILT_IN_MANIFESTS.find((m) => m.name === name)!.tokenizer.padding;
    expect(padding("mobileclip-s0")).toBe("max_length");
    expect(padding("clip-vit-b32")).toBe("longest");
    expect(padding("test-clip")).toBe("longest");
  });
});

describe("indexes written before the padding setting existed", () => {
  test("open with a model manifest that has it", async () => {
    const dir = join(root, "old-index");
    const testClip = BUILT_IN_MANIFESTS.find((m) => m.name === "test-clip")!;
    const base = { name: testClip.name, dims: testClip.dims, preprocess: testClip.preprocess };
    const old = await IndexStore.open(dir, { model: { ...base, tokenizer: { kind: "clip-bpe", contextLength: 77, vocab: "bundled" } } });
    await old.close();
    const reopened = await IndexStore.open(dir, { model: { ...base, tokenizer: testClip.tokenizer } });
    try {
      expect(reopened.manifest.model.tokenizer).toEqual({ kind: "clip-bpe", contextLength: 77, vocab: "bundled" });
    } finally {
      await reopened.close();
    }
  });
});
