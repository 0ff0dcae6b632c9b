// Switching the face embedder to one of another embedding size on an index with named persons: refused before the
// run writes anything (every batch's auto-assignment would fail on the size mismatch), by `imgd index` and by the
// server's start, with both sizes and the way to keep the persons; the persons stay as they were.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildTestArcface } from "../../models/test/generate-faces.ts";
import { closeStages, openStages } from "../../src/engine/analysis/open-stages.ts";
import { builtInStageManifests, registerStageManifests } from "../../src/engine/analysis/stage-model.ts";
import "../../src/engine/faces/face-models.ts";
import { clusterFaces } from "../../src/engine/faces/face-clustering.ts";
import { openPersonsCatalog } from "../../src/engine/faces/persons-catalog.ts";
import { listPersons, namePerson } from "../../src/engine/faces/persons.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { resolveModel } from "../../src/engine/models.ts";
import { CATALOG_FILE } from "../../src/engine/store/catalog.ts";
import { startServer } from "../../src/server/server.ts";
import { FACE_DIMS, facesOf, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";

const REPO = join(import.meta.dir, "..", "..");
const PHOTOS = join(REPO, "..", "shared", "photos");
const root = mkdtempSync(join(tmpdir(), "imgd-embedder-switch-"));
const models = join(root, "models");
const photos = join(root, "photos");
const index = join(root, "index");

const faces = (embedder: string) => [{ name: "faces" as const, models: { detector: "test-scrfd", embedder } }];

async function indexWith(embedder: string) {
  const stages = await openStages(faces(embedder), { modelDirs: [models], threads: 1 });
  try {
    return await runIndex({ roots: [photos], indexDir: index, model: await resolveModel("test-clip", [models]), stages, batchSize: 8, threads: 1 });
  } finally {
    await closeStages(stages);
  }
}

beforeAll(async () => {
  // The test models, and an ArcFace-shaped embedder of 128 dims beside them.
  mkdirSync(models);
  for (const entry of ["test-clip", "test-clip.json", "test-scrfd", "test-arcface"]) symlinkSync(join(REPO, "models", entry), join(models, entry));
  mkdirSync(join(models, "test-arcface-128"));
  writeFileSync(join(models, "test-arcface-128", "model.onnx"), buildTestArcface(128));
  const arcface = builtInStageManifests().find((m) => m.name === "test-arcface")!;
  registerStageManifests([{ ...arcface, name: "test-arcface-128", params: { ...arcface.params, dims: 128 } }]);

  mkdirSync(photos);
  for (const name of ["orange.jpg", "apple.jpg", "rocket.jpg"]) cpSync(join(PHOTOS, name), join(photos, name));
  await indexWith("test-arcface");
  // Persons from 512-d faces on the indexed images, one of them named.
  const { DuckDBInstance } = await import("@duckdb/node-api");
  const instance = await DuckDBInstance.create(join(index, CATALOG_FILE));
  const conn = await instance.connect();
  const imageIds = (await conn.runAndReadAll("SELECT id FROM images ORDER BY id")).getRows().map((r) => Number(r[0]));
  conn.closeSync();
  instance.closeSync();
  const identityOf = Array.from({ length: 12 }, (_, i) => i % 2);
  const vectors = facesOf(unitVectors(2, FACE_DIMS, 5), identityOf, 0.5, 9);
  await insertFaces(join(index, CATALOG_FILE), identityOf.map((_, i) => ({ imageId: imageIds[i % imageIds.length]!, embedding: row(vectors, i) })));
  const db = await openPersonsCatalog(index, { readOnly: false });
  try {
    await db.write((c) => clusterFaces(c, { minClusterSize: 4 }));
    const [first] = (await listPersons(db.read)).persons;
    await db.write((c) => namePerson(c, first!.id, "Alice"));
  } finally {
    db.close();
  }
}, 120_000);

afterAll(() => rmSync(root, { recursive: true, force: true }));

async function snapshot() {
  const db = await openPersonsCatalog(index, { readOnly: true });
  try {
    return {
      manifest: JSON.parse(readFileSync(join(index, "manifest.json"), "utf8")).stages,
      faces: await db.read("SELECT id, image_id, person_id, octet_length(embedding) FROM faces ORDER BY id"),
      persons: await db.read("SELECT id, name FROM persons ORDER BY id"),
      runs: await db.read("SELECT image_id, stage, version FROM analysis_runs ORDER BY image_id, stage"),
    };
  } finally {
    db.close();
  }
}

const refusal =
  /^face embedder test-arcface-128 makes 128-d embeddings, but this index's 1 named person was made from 512-d ones by test-arcface: .*To keep the persons, run with --face-embedder test-arcface; to use test-arcface-128, index into a new --index/;

test("imgd index with a face embedder of another size is refused up front, naming both sizes, and changes nothing", async () => {
  const before = await snapshot();
  expect(before.manifest.faces.embedder).toBe("test-arcface");
  expect(before.persons.some(([, name]) => name === "Alice")).toBe(true);
  await expect(indexWith("test-arcface-128")).rejects.toThrow(refusal);
  expect(await snapshot()).toEqual(before);
  // The embedder the persons were made with still runs.
  expect((await indexWith("test-arcface")).failed).toBe(0);
}, 120_000);

test("a server asked for that embedder stops at start-up with the same message, before any ingest", async () => {
  const before = await snapshot();
  const serve = (embedder: string) =>
    startServer({ indexDir: index, modelsDir: models, logFile: join(root, "server.log"), threads: 1, port: 0, stages: faces(embedder) });
  await expect(serve("test-arcface-128")).rejects.toThrow(refusal);
  expect(await snapshot()).toEqual(before);
  const server = await serve("test-arcface");
  await server.ready;
  await server.stop();
}, 120_000);
