import { afterAll, afterEach, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { buildTestClip, generateTestClip } from "../../models/test/generate.ts";
import { ChecksumError, pullModel } from "../../src/engine/model-pull.ts";
import {
  BUILT_IN_MANIFESTS,
  listModels,
  MissingModelError,
  modelSearchDirs,
  parseManifest,
  resolveModel,
  UnknownModelError,
  verifyModel,
  type ModelManifest,
} from "../../src/engine/models.ts";
import { loadOrt } from "../../src/engine/native.ts";

const sha256 = (b: Uint8Array) => createHash("sha256").update(b).digest("hex");
const builtIn = (name: string) => BUILT_IN_MANIFESTS.find((m) => m.name === name)!;

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), "imgd-models-"));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

function freshDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

describe("test-clip generator", () => {
  test("writes the same bytes every time, matching the sha256 in the test-clip manifest", () => {
    const a = buildTestClip();
    const b = buildTestClip();
    expect(Buffer.from(a.image).equals(Buffer.from(b.image))).toBe(true);
    expect(Buffer.from(a.text).equals(Buffer.from(b.text))).toBe(true);
    expect(sha256(a.image)).toBe(builtIn("test-clip").image.sha256!);
    expect(sha256(a.text)).toBe(builtIn("test-clip").text.sha256!);
    expect(a.image.length).toBeLessThan(1_000_000);
    expect(a.text.length).toBeLessThan(1_000_000);
  });

  test("leaves files with identical bytes untouched on a second run", () => {
    const dir = join(freshDir("gen"), "test-clip");
    expect(generateTestClip(dir).map((r) => r.written)).toEqual([true, true]);
    const mtime = statSync(join(dir, "image.onnx")).mtimeMs;
    expect(generateTestClip(dir).map((r) => r.written)).toEqual([false, false]);
    expect(statSync(join(dir, "image.onnx")).mtimeMs).toBe(mtime);
  });

  test("produces towers that onnxruntime loads with the CLIP input and output signatures", async () => {
    const dir = join(root, "gen", "test-clip");
    const ort = loadOrt();
    const image = await ort.InferenceSession.create(join(dir, "image.onnx"));
    const text = await ort.InferenceSession.create(join(dir, "text.onnx"));
    try {
      const img = await image.run({ pixel_values: new ort.Tensor("float32", new Float32Array(2 * 3 * 224 * 224), [2, 3, 224, 224]) });
      const txt = await text.run({ input_ids: new ort.Tensor("int64", new BigInt64Array(3 * 77), [3, 77]) });
      expect(img.image_embeds!.dims).toEqual([2, 512]);
      expect(txt.text_embeds!.dims).toEqual([3, 512]);
    } finally {
      await image.release();
      await text.release();
    }
  });
});

describe("manifests", () => {
  test("ship clip-vit-b32 (fp32 and int8), mobileclip-s0 and test-clip inside the code", () => {
    expect(BUILT_IN_MANIFESTS.map((m) => m.name).sort()).toEqual(["clip-vit-b32", "clip-vit-b32-q8", "mobileclip-s0", "test-clip"]);
    expect(builtIn("clip-vit-b32-q8").text.url).toEndWith("/onnx/text_model_quantized.onnx");
    expect(builtIn("mobileclip-s0").preprocess).toEqual({ size: 256, interpolation: "bilinear", mean: [0, 0, 0], std: [1, 1, 1] });
    expect(builtIn("clip-vit-b32").image.url).toStartWith("https://huggingface.co/");
  });

  test("are rejected with the offending field named when invalid", () => {
    const bad = { ...builtIn("test-clip"), dims: -1, image: { ...builtIn("test-clip").image, file: "../x.onnx" } };
    expect(() => parseManifest(bad, "bad.json")).toThrow(/bad\.json.*dims.*image\.file/);
  });
});

describe("modelSearchDirs", () => {
  test("searches the flag, then $IMGD_MODELS, then ./models, then ~/.cache/imgd/models", () => {
    expect(modelSearchDirs("/flag", { IMGD_MODELS: "/env" })).toEqual([
      "/flag",
      "/env",
      resolve("models"),
      join(homedir(), ".cache", "imgd", "models"),
    ]);
    expect(modelSearchDirs(undefined, {})).toEqual([resolve("models"), join(homedir(), ".cache", "imgd", "models")]);
  });
});

describe("listModels and resolveModel", () => {
  test("lists built-in and on-disk manifests with the files each dir holds", () => {
    const first = freshDir("list-a");
    const second = freshDir("list-b");
    generateTestClip(join(second, "test-clip"));
    const custom: ModelManifest = { ...builtIn("test-clip"), name: "my-clip", generate: undefined };
    writeFileSync(join(first, "my-clip.json"), JSON.stringify(custom));
    writeFileSync(join(first, "broken.json"), JSON.stringify({ name: "broken" }));

    const { models, invalid } = listModels([first, second]);
    const byName = new Map(models.map((m) => [m.manifest.name, m]));
    expect([...byName.keys()]).toEqual(["clip-vit-b32", "clip-vit-b32-q8", "mobileclip-s0", "my-clip", "test-clip"]);
    expect(byName.get("my-clip")!.origin).toBe(join(first, "my-clip.json"));
    expect(byName.get("test-clip")!.imagePath).toBe(join(second, "test-clip", "image.onnx"));
    expect(byName.get("clip-vit-b32")!.imagePath).toBeNull();
    expect(invalid.map((i) => i.path)).toEqual([join(first, "broken.json")]);
  });

  test("resolves a model from the first dir that holds both of its files", async () => {
    const empty = freshDir("resolve-empty");
    const full = freshDir("resolve-full");
    generateTestClip(join(full, "test-clip"));
    const model = await resolveModel("test-clip", [empty, full]);
    expect(model.dir).toBe(join(full, "test-clip"));
    expect(model.imagePath).toBe(join(full, "test-clip", "image.onnx"));
    expect(model.textPath).toBe(join(full, "test-clip", "text.onnx"));
  });

  test("names the missing file, the dirs searched and the pull command when a model is absent", async () => {
    const dir = freshDir("missing");
    mkdirSync(join(dir, "clip-vit-b32"));
    writeFileSync(join(dir, "clip-vit-b32", "image.onnx"), "x");
    const err = await resolveModel("clip-vit-b32", [dir]).catch((e) => e);
    expect(err).toBeInstanceOf(MissingModelError);
    expect(err.missing).toEqual(["text.onnx"]);
    expect(err.message).toContain(join(dir, "clip-vit-b32"));
    expect(err.message).toContain("imgd models pull clip-vit-b32");
  });

  test("tells the user to run the generator when test-clip is absent", async () => {
    const err = await resolveModel("test-clip", [freshDir("missing-test")]).catch((e) => e);
    expect(err).toBeInstanceOf(MissingModelError);
    expect(err.message).toContain("bun models/test/generate.ts");
  });

  test("lists the known models when asked for an unknown one", async () => {
    const err = await resolveModel("no-such-model", []).catch((e) => e);
    expect(err).toBeInstanceOf(UnknownModelError);
    expect(err.message).toContain("clip-vit-b32, clip-vit-b32-q8, mobileclip-s0, test-clip");
  });
});

describe("verifyModel", () => {
  test("reports ok for intact files, mismatch for a changed one and unknown without a published hash", async () => {
    const dir = freshDir("verify");
    generateTestClip(join(dir, "test-clip"));
    const model = await resolveModel("test-clip", [dir]);
    expect((await verifyModel(model)).map((f) => f.status)).toEqual(["ok", "ok"]);

    const bytes = readFileSync(model.textPath);
    bytes[bytes.length - 1]! ^= 0xff;
    writeFileSync(model.textPath, bytes);
    expect((await verifyModel(model)).map((f) => f.status)).toEqual(["ok", "mismatch"]);

    const noHash = { ...model, manifest: { ...model.manifest, image: { ...model.manifest.image, sha256: undefined } } };
    expect((await verifyModel(noHash))[0]!.status).toBe("unknown");
  });
});

describe("pullModel", () => {
  const payload = Buffer.from(Array.from({ length: 200_000 }, (_, i) => (i * 31 + 7) & 0xff));
  const small = Buffer.from("text tower bytes");
  const requests: { path: string; range: string | null }[] = [];
  let honourRange = true;
  let server: ReturnType<typeof Bun.serve>;

  beforeAll(() => {
    server = Bun.serve({
      hostname: "127.0.0.1",
      port: 0,
      fetch(req) {
        const path = new URL(req.url).pathname;
        const range = req.headers.get("range");
        requests.push({ path, range });
        const body = path === "/image.onnx" ? payload : path === "/text.onnx" ? small : null;
        if (!body) return new Response("not found", { status: 404 });
        const m = honourRange ? range?.match(/^bytes=(\d+)-$/) : null;
        if (!m) return new Response(body, { headers: { "content-length": String(body.length) } });
        const start = Number(m[1]);
        if (start >= body.length) return new Response(null, { status: 416 });
        return new Response(body.subarray(start), {
          status: 206,
          headers: { "content-range": `bytes ${start}-${body.length - 1}/${body.length}`, "content-length": String(body.length - start) },
        });
      },
    });
  });
  afterAll(() => server.stop(true));
  afterEach(() => {
    requests.length = 0;
    honourRange = true;
  });

  function manifest(imageSha?: string): ModelManifest {
    const base = `http://127.0.0.1:${server.port}`;
    const m = builtIn("test-clip");
    return {
      ...m,
      name: "pulled",
      generate: undefined,
      image: { ...m.image, url: `${base}/image.onnx`, sha256: imageSha },
      text: { ...m.text, url: `${base}/text.onnx`, sha256: undefined },
    };
  }

  test("downloads every file into <dest>/<name>/ and verifies a known sha256", async () => {
    const dest = freshDir("pull-fresh");
    const seen: number[] = [];
    const files = await pullModel(manifest(sha256(payload)), dest, { onProgress: (p) => seen.push(p.received) });
    expect(readFileSync(join(dest, "pulled", "image.onnx")).equals(payload)).toBe(true);
    expect(readFileSync(join(dest, "pulled", "text.onnx")).equals(small)).toBe(true);
    expect(files.map((f) => f.verified)).toEqual([true, false]);
    expect(seen.at(-1)).toBe(small.length);
    expect(existsSync(join(dest, "pulled", "image.onnx.part"))).toBe(false);
  });

  test("resumes a partial download with a Range request", async () => {
    const dest = freshDir("pull-resume");
    mkdirSync(join(dest, "pulled"));
    writeFileSync(join(dest, "pulled", "image.onnx.part"), payload.subarray(0, 123_456));
    await pullModel(manifest(sha256(payload)), dest);
    expect(requests.find((r) => r.path === "/image.onnx")!.range).toBe("bytes=123456-");
    expect(readFileSync(join(dest, "pulled", "image.onnx")).equals(payload)).toBe(true);
  });

  test("starts over when the server ignores the Range header and answers 200", async () => {
    honourRange = false;
    const dest = freshDir("pull-no-range");
    mkdirSync(join(dest, "pulled"));
    writeFileSync(join(dest, "pulled", "image.onnx.part"), Buffer.from("stale bytes from another file"));
    await pullModel(manifest(sha256(payload)), dest);
    expect(readFileSync(join(dest, "pulled", "image.onnx")).equals(payload)).toBe(true);
  });

  test("deletes the partial file and throws when the sha256 does not match", async () => {
    const dest = freshDir("pull-mismatch");
    const err = await pullModel(manifest("0".repeat(64)), dest).catch((e) => e);
    expect(err).toBeInstanceOf(ChecksumError);
    expect(err.actual).toBe(sha256(payload));
    expect(existsSync(join(dest, "pulled", "image.onnx.part"))).toBe(false);
    expect(existsSync(join(dest, "pulled", "image.onnx"))).toBe(false);
  });

  test("skips files that are already in place and match", async () => {
    const dest = freshDir("pull-present");
    await pullModel(manifest(sha256(payload)), dest);
    requests.length = 0;
    const files = await pullModel(manifest(sha256(payload)), dest);
    expect(files.map((f) => f.alreadyPresent)).toEqual([true, true]);
    expect(requests).toEqual([]);
  });

  test("fails with the HTTP status when the server has no such file", async () => {
    const m = manifest();
    const err = await pullModel({ ...m, text: { ...m.text, url: m.text.url!.replace("text.onnx", "gone.onnx") } }, freshDir("pull-404")).catch(
      (e) => e,
    );
    expect(err.message).toContain("HTTP 404");
  });
});
