import { beforeAll, expect, test } from "bun:test";
import { mkdirSync, renameSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { searchShards } from "../../src/cluster-net/shard-query.ts";
import { TextEmbedder } from "../../src/engine/embed.ts";
import { exportParquet } from "../../src/engine/export-parquet.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { parsePathMaps, toCanonicalPath, toLocalPath } from "../../src/engine/path-map.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { mergeShards } from "../../src/engine/store/merge-shards.ts";
import { CATALOG_FILE } from "../../src/engine/store/catalog.ts";
import { openPersonsCatalog } from "../../src/engine/faces/persons-catalog.ts";
import { assignFaces, createPerson } from "../../src/engine/faces/persons.ts";
import { FACE_DIMS, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";
import { scanRoots } from "../../src/engine/scan.ts";
import { makePhotos, MODELS, tempDir } from "./cluster-harness.ts";
import { readRows } from "./helpers-db.ts";

let root: string;
let model: ResolvedModel;
let photos: string[];
let query: Float32Array;

beforeAll(async () => {
  root = tempDir("shards");
  photos = await makePhotos(join(root, "photos"), 40, 64);
  model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const { files } = await scanRoots([join(root, "photos")]);
  const byPath = new Map(files.map((f) => [f.path, f]));
  const index = (dir: string, paths: string[]) =>
    runIndex({ roots: [], files: paths.map((p) => byPath.get(p)!), indexDir: dir, model, batchSize: 8, threads: 1 });
  // Two shards that overlap on photos 15..19 (a re-leased batch both workers finished), and the same set in one index.
  await index(join(root, "shards", "a"), photos.slice(0, 20));
  await index(join(root, "shards", "b"), photos.slice(15));
  await index(join(root, "single"), photos);
  const text = await TextEmbedder.open(model, { threads: 1 });
  query = await text.embed(["a red photo"]);
  await text.close();
}, 60_000);

test("a query across shards before the merge returns what one index of the same photos returns", async () => {
  const across = await searchShards(
    [
      { name: "a", dir: join(root, "shards", "a") },
      { name: "b", dir: join(root, "shards", "b") },
    ],
    query,
    10,
  );
  const single = await IndexStore.open(join(root, "single"), { readOnly: true });
  const expected = await single.search(query, 10);
  await single.close();
  expect(across.skipped).toEqual([]);
  expect(across.hits.map((h) => h.path)).toEqual(expected.map((h) => h.path));
  for (const [i, h] of across.hits.entries()) expect(h.score).toBeCloseTo(expected[i]!.score, 5);
  expect(new Set(across.hits.map((h) => h.path)).size).toBe(10);
});

test("merging takes each path once, only from the shard whose commit counted", async () => {
  const committedByA = new Set(photos.slice(0, 20));
  const out = join(root, "merged");
  const report = await mergeShards(
    [
      { dir: join(root, "shards", "a"), accept: (p) => (committedByA.has(p) ? p : null) },
      { dir: join(root, "shards", "b"), accept: (p) => (committedByA.has(p) ? null : p) },
    ],
    out,
  );
  expect(report.indexed).toBe(40);
  expect(report.duplicates).toBe(0);
  expect(report.perShard.map((s) => s.rows)).toEqual([20, 20]);
  const rows = await readRows(join(out, "catalog.duckdb"), "SELECT path FROM images ORDER BY path");
  expect(rows.map((r) => r[0])).toEqual(photos);
  // The merged index answers like the single one.
  const merged = await IndexStore.open(out, { readOnly: true });
  const single = await IndexStore.open(join(root, "single"), { readOnly: true });
  expect((await merged.search(query, 5)).map((h) => h.path)).toEqual((await single.search(query, 5)).map((h) => h.path));
  await merged.close();
  await single.close();

  // A rerun replaces the merged index whole.
  const again = await mergeShards([{ dir: join(root, "shards", "a"), accept: (p) => p }], out);
  expect(again.indexed).toBe(20);
  expect((await readRows(join(out, "catalog.duckdb"), "SELECT count(*) FROM images"))[0]![0]).toBe(20n);
});

test("export --parquet writes paths, metadata and FLOAT[dims] embeddings, with paths mapped for this host", async () => {
  const out = join(root, "export.parquet");
  const report = await exportParquet(join(root, "single"), out, parsePathMaps([`${join(root, "photos")}=/mnt/pics`]));
  expect(report).toMatchObject({ rows: 40, dims: model.manifest.dims, model: "test-clip" });
  const { loadDuckDB } = await import("../../src/engine/native.ts");
  const db = await loadDuckDB().DuckDBInstance.create(":memory:");
  const conn = await db.connect();
  const [r] = (await conn.runAndReadAll(`SELECT count(*), min(path), max(len(embedding)), typeof(any_value(embedding)) FROM read_parquet('${out}')`)).getRows();
  conn.closeSync();
  db.closeSync();
  expect(Number(r![0])).toBe(40);
  expect(r![1]).toBe(`/mnt/pics/${basename(photos[0]!)}`);
  expect(Number(r![2])).toBe(model.manifest.dims);
  // Parquet has lists, not fixed-size arrays: FLOAT[dims] comes back as FLOAT[] of length dims.
  expect(r![3]).toBe("FLOAT[]");
  const meta = await Bun.file(`${out}.json`).json();
  expect(meta).toMatchObject({ rows: 40, dims: model.manifest.dims, model: { name: "test-clip" } });
});

test("path maps rewrite on whole path components, longest prefix first, both ways", () => {
  const maps = parsePathMaps(["/data=/mnt/data", "/data/photos=/Volumes/photos/"]);
  expect(toLocalPath("/data/photos/a.jpg", maps)).toBe("/Volumes/photos/a.jpg");
  expect(toLocalPath("/data/x/a.jpg", maps)).toBe("/mnt/data/x/a.jpg");
  expect(toLocalPath("/database/a.jpg", maps)).toBe("/database/a.jpg");
  expect(toCanonicalPath("/Volumes/photos/a.jpg", maps)).toBe("/data/photos/a.jpg");
  expect(() => parsePathMaps(["nope"])).toThrow("--path-map takes FROM=TO");
});

test("a merge onto a kept index moves the row of a file a shard holds under a new path (same content): its id, faces and their person stay", async () => {
  const dir = tempDir("merge-moves");
  const [moved, stays] = await makePhotos(join(dir, "photos"), 2, 64);
  const base = join(dir, "index");
  const shard = join(dir, "shard");
  const index = async (to: string, paths: string[]) => {
    const { files } = await scanRoots(paths);
    return runIndex({ roots: [], files, indexDir: to, model, batchSize: 8, threads: 1 });
  };
  await index(base, [moved!, stays!]);
  const idOf = async (path: string) => Number((await readRows(join(base, CATALOG_FILE), `SELECT id FROM images WHERE path = '${path}'`))[0]![0]);
  const before = await idOf(moved!);
  // A face on the photo, named Alice by the user in the merged index.
  const [face] = await insertFaces(join(base, CATALOG_FILE), [{ imageId: before, embedding: row(unitVectors(1, FACE_DIMS, 5), 0) }]);
  const persons = await openPersonsCatalog(base, { readOnly: false });
  const alice = await persons.write((conn) => createPerson(conn, "Alice"));
  await persons.write((conn) => assignFaces(conn, [face!], alice));
  persons.close();

  // The photo moved to another folder; the re-run's worker indexed it there, with its face (no person in a shard).
  const renamed = join(dir, "photos", "2024", "moved.jpg");
  mkdirSync(dirname(renamed), { recursive: true });
  renameSync(moved!, renamed);
  await index(shard, [renamed]);
  const shardId = Number((await readRows(join(shard, CATALOG_FILE), "SELECT id FROM images"))[0]![0]);
  await insertFaces(join(shard, CATALOG_FILE), [{ imageId: shardId, embedding: row(unitVectors(1, FACE_DIMS, 5), 0) }]);

  const report = await mergeShards([{ dir: shard, accept: (p) => p }], base, { keep: (p) => p === stays });
  expect([report.rows, report.indexed, report.kept]).toEqual([2, 2, 1]);
  expect(await readRows(join(base, CATALOG_FILE), "SELECT path FROM images ORDER BY path")).toEqual([[renamed], [stays]]);
  expect(await idOf(renamed)).toBe(before);
  const faces = await readRows(
    join(base, CATALOG_FILE),
    "SELECT i.path, p.name FROM faces f JOIN images i ON i.id = f.image_id LEFT JOIN persons p ON p.id = f.person_id",
  );
  expect(faces).toEqual([[renamed, "Alice"]]);
  const merged = await IndexStore.open(base, { readOnly: true });
  expect((await merged.stats()).vectors).toBe(2);
  await merged.close();
}, 60_000);
