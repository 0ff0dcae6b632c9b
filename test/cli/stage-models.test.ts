// A stage given without model flags keeps the models the index last ran it with, through the real CLI. The models
// dir holds only the generated test models: a stage that fell back to a default (scrfd-10g, yolov8n) would stop
// with "model ... is missing", so a run that succeeds and analyses nothing again ran the index's own models.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { copyPhotos, imgd, imgdJson, tempDir } from "./cli-harness.ts";

const root = tempDir("stage-models");
const photos = join(root, "photos");
const index = join(root, "index");
const base = ["--index", index, "--threads", "1"];
const TEST_MODELS = { faces: { detector: "test-scrfd", embedder: "test-arcface" }, objects: { model: "test-yolo" } };

beforeAll(async () => {
  mkdirSync(photos, { recursive: true });
  copyPhotos(["home.jpg", "fruits.jpg"], photos);
  const first = await imgdJson([
    "index", photos, ...base, "--model", "test-clip",
    "--faces", "--face-detector", "test-scrfd", "--face-embedder", "test-arcface", "--objects", "--object-model", "test-yolo",
  ]);
  expect(first.embedded).toBe(2);
  expect(first.stageModels).toEqual(TEST_MODELS);
}, 240_000);

describe("imgd index --faces --objects without model flags", () => {
  test("the index records the models each stage ran with", () => {
    const manifest = JSON.parse(readFileSync(join(index, "manifest.json"), "utf8"));
    expect(manifest.stages).toEqual(TEST_MODELS);
  });

  test("keeps the index's models, says so, and analyses nothing again", async () => {
    const run = await imgd(["index", photos, ...base, "--faces", "--objects"]);
    expect(run.stderr).not.toContain("is missing");
    expect(run.code).toBe(0);
    expect(run.stderr).toContain("[index] stages: faces test-scrfd + test-arcface (as the index last ran it), objects test-yolo (as the index last ran it)");
    expect(run.stdout).toContain("0 unchanged images analysed");
    const json = await imgdJson(["index", photos, ...base, "--faces"]);
    expect(json.stageModels).toEqual({ faces: TEST_MODELS.faces });
    expect(json.analysed).toBe(0);
  }, 240_000);

  test("a new photo is analysed with the index's models", async () => {
    copyPhotos(["building.jpg"], photos);
    const report = await imgdJson(["index", photos, ...base, "--faces", "--objects"]);
    expect(report.embedded).toBe(1);
    expect(report.stageModels).toEqual(TEST_MODELS);
  }, 240_000);

  test("a model flag still wins, role by role: the other role keeps the index's model", async () => {
    const run = await imgd(["index", photos, ...base, "--faces", "--face-detector", "scrfd-500m"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('model "scrfd-500m" is missing');
    expect(run.stderr).toContain("[index] stages: faces scrfd-500m + test-arcface (detector as asked, embedder as the index last ran it)");
    // Nothing ran, so the index still names the models it has.
    expect(JSON.parse(readFileSync(join(index, "manifest.json"), "utf8")).stages).toEqual(TEST_MODELS);
  }, 120_000);

  test("an index that recorded no stage models (made before they were) takes the defaults", async () => {
    const older = join(root, "older");
    await imgdJson(["index", photos, "--index", older, "--model", "test-clip", "--objects", "--object-model", "test-yolo"]);
    const path = join(older, "manifest.json");
    const manifest = JSON.parse(readFileSync(path, "utf8"));
    delete manifest.stages;
    writeFileSync(path, JSON.stringify(manifest));
    const run = await imgd(["index", photos, "--index", older, "--objects"]);
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('model "yolov8n" is missing');
  }, 240_000);
});
