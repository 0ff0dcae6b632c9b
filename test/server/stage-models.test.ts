// `imgd serve --faces` with the face models missing or broken: the server refuses to start naming the file and the
// command that gets it, and a model that breaks after start-up makes ingest a 503 with the reason, not a 500.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { modelSearchDirs } from "../../src/engine/models.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, MODELS, photo, serve, tempDir, type Fixture } from "./server-harness.ts";

describe("analysis stage models when serving", () => {
  let fx: Fixture;
  let server: RunningServer | undefined;
  beforeAll(async () => {
    fx = await indexedPhotos("stage-models", ["orange.jpg"]);
  }, 120_000);
  afterAll(() => server?.stop());

  // Only where scrfd-10g has not been pulled into a searched folder (~/.cache/imgd/models, say).
  const pulled = modelSearchDirs(MODELS).some((d) => existsSync(join(d, "scrfd-10g", "det_10g.onnx")));
  test.skipIf(pulled)("a missing face model stops start-up with the file and the command to get it", async () => {
    await expect(serve(fx, { stages: [{ name: "faces" }] })).rejects.toThrow(
      /model "scrfd-10g" is missing det_10g\.onnx; looked in .*scrfd-10g.*\. Run: /,
    );
  });

  test("a face model that cannot be opened at the first ingest is a 503 with the reason, and search goes on", async () => {
    const models = tempDir("broken-models");
    for (const name of ["test-scrfd", "test-arcface"]) cpSync(join(MODELS, name), join(models, name), { recursive: true });
    server = await serve(fx, { modelsDir: models, stages: [{ name: "faces", models: { detector: "test-scrfd", embedder: "test-arcface" } }] });
    writeFileSync(join(models, "test-scrfd", "model.onnx"), "not a model");
    const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form([["apple.jpg", photo("apple.jpg")]]) });
    expect(res.status).toBe(503);
    expect(((await res.json()) as any).error).toStartWith("cannot open the analysis models: ");
    expect((await fetch(`${server.url}/api/search?q=orange&k=1`)).status).toBe(200);
  });

  test("--faces without model flags keeps the models the index last ran faces with, and ingests with them", async () => {
    const own = await indexedPhotos("stage-models-own", ["orange.jpg"]);
    const first = await serve(own, { stages: [{ name: "faces", models: { detector: "test-scrfd", embedder: "test-arcface" } }] });
    try {
      const res = await fetch(`${first.url}/api/ingest`, { method: "POST", body: form([["apple.jpg", photo("apple.jpg")]]) });
      expect(res.status).toBe(200);
    } finally {
      await first.stop();
    }
    // The models dir has no scrfd-10g: a fall back to the defaults would stop start-up.
    const again = await serve(own, { stages: [{ name: "faces" }] });
    try {
      expect(again.stageModels).toBe("faces test-scrfd + test-arcface (as the index last ran it)");
      const res = await fetch(`${again.url}/api/ingest`, { method: "POST", body: form([["coffee.png", photo("coffee.png")]]) });
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).errors).toEqual([]);
    } finally {
      await again.stop();
    }
  }, 120_000);
});
