// The pipeline's contract with optional analysis stages, exercised with a small real stage (the mean colour of the
// decoded pixels) so the behaviour of the plumbing is visible apart from any model.
import { expect, test } from "bun:test";
import { cpSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { AnalysisStage } from "../../src/engine/analysis/stage.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadDuckDB } from "../../src/engine/native.ts";
import type { DecodedImage } from "../../src/engine/types.ts";
import { MODELS, PHOTOS, tempDir } from "../cli/cli-harness.ts";

interface MeanColour {
  r: number;
  g: number;
  b: number;
  shortSide: number;
}

function meanColourStage(version = "1", opts: { failOn?: string } = {}): AnalysisStage<MeanColour> & { seen: string[] } {
  const seen: string[] = [];
  return {
    name: "colour",
    version,
    models: {},
    minShortSide: 300,
    ddl: ["CREATE TABLE IF NOT EXISTS colours (image_id BIGINT NOT NULL, r DOUBLE, g DOUBLE, b DOUBLE, short_side INT)"],
    seen,
    async analyze(image: DecodedImage) {
      const sum = [0, 0, 0];
      for (let i = 0; i < image.data.length; i += 3) for (let c = 0; c < 3; c++) sum[c]! += image.data[i + c]!;
      const n = image.data.length / 3;
      const out = { r: sum[0]! / n, g: sum[1]! / n, b: sum[2]! / n, shortSide: Math.min(image.width, image.height) };
      seen.push(`${out.r.toFixed(3)}`);
      if (opts.failOn && Math.min(image.sourceWidth, image.sourceHeight) < 300) throw new Error(opts.failOn);
      return out;
    },
    async write(conn, results) {
      for (const { imageId, result } of results) {
        await conn.run("INSERT INTO colours VALUES ($1, $2, $3, $4, $5)", [imageId, result.r, result.g, result.b, result.shortSide]);
      }
    },
    counts: () => ({ objects: 1 }),
    async close() {},
  };
}

async function readColours(indexDir: string): Promise<{ path: string; short: number; stage: string | null; error: string | null }[]> {
  const duck = loadDuckDB();
  const db = await duck.DuckDBInstance.create(join(indexDir, "catalog.duckdb"), { access_mode: "READ_ONLY" });
  const conn = await db.connect();
  try {
    const rows = (
      await conn.runAndReadAll(`SELECT i.path, c.short_side, r.version, r.error FROM images i
        LEFT JOIN colours c ON c.image_id = i.id LEFT JOIN analysis_runs r ON r.image_id = i.id
        WHERE i.status = 'indexed' ORDER BY i.path`)
    ).getRows();
    return rows.map((r) => ({ path: String(r[0]).split("/").pop()!, short: Number(r[1]), stage: r[2] as string | null, error: r[3] as string | null }));
  } finally {
    conn.closeSync();
    db.closeSync();
  }
}

async function setup() {
  const root = tempDir("stages");
  const photos = join(root, "photos");
  mkdirSync(photos);
  for (const name of ["orange.jpg", "apple.jpg", "home.jpg"]) cpSync(join(PHOTOS, name), join(photos, name));
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const index = (stages: AnalysisStage[]) =>
    runIndex({ roots: [photos], indexDir: join(root, "index"), model, threads: 1, batchSize: 2, stages });
  return { root, photos, index, indexDir: join(root, "index") };
}

test("new images get each stage's rows, decoded at least as large as the stage asks", async () => {
  const { index, indexDir } = await setup();
  const report = await index([meanColourStage()]);
  expect(report.embedded).toBe(3);
  expect(report.found.objects).toBe(3);
  const rows = await readColours(indexDir);
  expect(rows.map((r) => r.path)).toEqual(["apple.jpg", "home.jpg", "orange.jpg"]);
  for (const r of rows) {
    expect(r.short).toBeGreaterThanOrEqual(300);
    expect(r.stage).toBe("1");
  }
});

test("a stage added later analyses unchanged images without embedding them again, once", async () => {
  const { index, indexDir } = await setup();
  expect((await index([])).embedded).toBe(3);
  const stage = meanColourStage();
  const second = await index([stage]);
  expect(second.embedded).toBe(0);
  expect(second.analysed).toBe(3);
  expect(stage.seen.length).toBe(3);
  const third = await index([stage]);
  expect(third.analysed).toBe(0);
  expect(stage.seen.length).toBe(3);
  expect((await readColours(indexDir)).every((r) => r.stage === "1")).toBe(true);
});

test("a new stage version re-analyses and replaces the earlier rows", async () => {
  const { index, indexDir } = await setup();
  await index([meanColourStage("1")]);
  const report = await index([meanColourStage("2")]);
  expect(report.analysed).toBe(3);
  const rows = await readColours(indexDir);
  expect(rows.length).toBe(3);
  expect(rows.every((r) => r.stage === "2")).toBe(true);
});

test("deleted and replaced files take their stage rows with them", async () => {
  const { index, indexDir, photos } = await setup();
  await index([meanColourStage()]);
  rmSync(join(photos, "home.jpg"));
  cpSync(join(PHOTOS, "rocket.jpg"), join(photos, "orange.jpg"));
  await index([meanColourStage()]);
  const rows = await readColours(indexDir);
  expect(rows.map((r) => r.path)).toEqual(["apple.jpg", "orange.jpg"]);
  const duck = loadDuckDB();
  const db = await duck.DuckDBInstance.create(join(indexDir, "catalog.duckdb"), { access_mode: "READ_ONLY" });
  const conn = await db.connect();
  const orphans = (await conn.runAndReadAll(`SELECT
      (SELECT count(*) FROM colours WHERE image_id NOT IN (SELECT id FROM images)),
      (SELECT count(*) FROM analysis_runs WHERE image_id NOT IN (SELECT id FROM images)),
      (SELECT count(*) FROM colours)`)).getRows()[0]!;
  conn.closeSync();
  db.closeSync();
  expect(orphans.map(Number)).toEqual([0, 0, 2]);
});

test("a stage that fails on one image records why and the image stays indexed", async () => {
  const { index, indexDir, photos } = await setup();
  writeFileSync(join(photos, "notes.txt"), "not an image");
  const { loadSharp } = await import("../../src/engine/native.ts");
  await loadSharp()({ create: { width: 120, height: 90, channels: 3, background: "#808080" } }).png().toFile(join(photos, "small.png"));
  const report = await index([meanColourStage("1", { failOn: "too small for this stage" })]);
  expect(report.embedded).toBe(4);
  const rows = await readColours(indexDir);
  const small = rows.find((r) => r.path === "small.png")!;
  expect(small.error).toBe("too small for this stage");
  expect(rows.filter((r) => r.error === null).length).toBe(3);
});

test("merging shards carries each stage's rows over under the merged image ids", async () => {
  const { mergeShards } = await import("../../src/engine/store/merge-shards.ts");
  const a = await setup();
  const b = await setup();
  rmSync(join(b.photos, "apple.jpg"));
  cpSync(join(PHOTOS, "rocket.jpg"), join(b.photos, "rocket.jpg"));
  await a.index([meanColourStage()]);
  await b.index([meanColourStage()]);
  const out = join(a.root, "merged");
  const report = await mergeShards(
    [a.indexDir, b.indexDir].map((dir) => ({ dir, accept: (p: string) => p.replace(/^.*\/photos\//, "/photos/") })),
    out,
  );
  expect(report.indexed).toBe(4);
  const rows = await readColours(out);
  expect(rows.map((r) => r.path)).toEqual(["apple.jpg", "home.jpg", "orange.jpg", "rocket.jpg"]);
  expect(rows.every((r) => r.stage === "1" && r.short >= 300)).toBe(true);
});

test("a run with stages holds a few decoded images at a time, not its batches' worth", async () => {
  const { root, photos } = await setup();
  // 40 distinct files (each photo flipped and tinted per copy), more than two batches; a slow stage keeps the
  // decoders ahead of it, so the queue fills as it does under real detectors.
  const { loadSharp } = await import("../../src/engine/native.ts");
  const sharp = loadSharp();
  const sources = ["orange.jpg", "apple.jpg", "home.jpg"];
  for (let i = 0; i < 40; i++) {
    await sharp(join(PHOTOS, sources[i % 3]!)).flop(i % 2 === 1).modulate({ brightness: 0.8 + i / 100 }).jpeg().toFile(join(photos, `copy-${i}.jpg`));
  }
  const colour = meanColourStage();
  const slow: AnalysisStage<MeanColour> = { ...colour, analyze: async (image) => (await Bun.sleep(10), colour.analyze(image)) };
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const threads = 1;
  const batchSize = 16;
  const report = await runIndex({ roots: [photos], indexDir: join(root, "index"), model, threads, batchSize, stages: [slow] });
  expect(report.embedded).toBe(43);
  expect(colour.seen.length).toBe(43);
  // The queue (2 x the 3 producers, at least 8), one image per producer waiting on it, and the one in the stages.
  // Before the stages ran as images left the queue: two batches plus the queue (32 + 32 here).
  const prefetch = threads + 2;
  expect(report.peakDecoded.images).toBeGreaterThan(1);
  expect(report.peakDecoded.images).toBeLessThanOrEqual(Math.max(2 * prefetch, 8) + prefetch + 1);
});
