import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { imgd, imgdJson, MODELS, tempDir } from "./cli-harness.ts";

test("models verify checks a face or object model's files as it does a CLIP model's", async () => {
  const files = await imgdJson(["models", "verify", "test-yolo"]);
  expect(files).toHaveLength(1);
  expect(files[0].path).toEndWith(join("test-yolo", "model.onnx"));
  expect(files[0].actual).toMatch(/^[0-9a-f]{64}$/);
  const clip = await imgdJson(["models", "verify", "test-clip"]);
  expect(clip.map((f: { tower: string }) => f.tower)).toEqual(["image", "text"]);
});

test("models pull of a stage model without a download says how to get it; an unknown name lists every model", async () => {
  const dest = tempDir("pull");
  const yolo = await imgd(["models", "pull", "yolov8n", "--to", dest]);
  expect(yolo.code).toBe(1);
  expect(yolo.stderr).toContain("yolo export model=yolov8n.pt");
  const unknown = await imgd(["models", "verify", "no-such-model"]);
  expect(unknown.code).toBe(1);
  expect(unknown.stderr).toContain("test-clip");
  expect(unknown.stderr).toContain("scrfd-10g");
  // A second name is refused, not ignored: its silence read as a pass.
  const two = await imgd(["models", "verify", "test-clip", "test-yolo"]);
  expect([two.code, two.stderr.split("\n")[0]]).toEqual([2, 'imgd: models verify takes one NAME, got "test-clip test-yolo"']);
});

test("models verify checks the OCR files imgd carries, which models list calls ready", async () => {
  const list = await imgdJson(["models", "list"]);
  const ocr = list.stageModels.find((m: { manifest: { name: string } }) => m.manifest.name === "ocr-ppocrv4");
  expect(ocr.dir).not.toBeNull();
  const files = await imgdJson(["models", "verify", "ocr-ppocrv4"]);
  expect(files.map((f: { tower: string }) => f.tower).sort()).toEqual(["cls", "det", "dict", "rec"]);
  for (const f of files) {
    expect(f.path.startsWith(ocr.dir)).toBe(true);
    expect(f.status).toBe("ok");
  }
});

test("models pull of a model without a download URL that is already here lists its files instead of failing", async () => {
  const dest = tempDir("pull-present");
  const yolo = await imgdJson(["models", "pull", "test-yolo", "--to", dest]);
  expect(yolo).toEqual([{ path: join(MODELS, "test-yolo", "model.onnx"), alreadyPresent: true }]);
  const clip = await imgd(["models", "pull", "test-clip", "--to", dest]);
  expect(clip.code).toBe(0);
  expect(clip.stdout).toContain(join(MODELS, "test-clip", "text.onnx"));
  // Nothing was made under --to for a model that cannot be downloaded.
  expect(readdirSync(dest)).toEqual([]);
});
