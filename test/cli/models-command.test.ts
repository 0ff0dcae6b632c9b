import { expect, test } from "bun:test";
import { join } from "node:path";
import { imgd, imgdJson, tempDir } from "./cli-harness.ts";

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
});
