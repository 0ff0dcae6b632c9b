// Duplicates over a real index: real photos and their sharp-made copies, embedded by test-clip, stored in DuckDB
// and USearch.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createHash } from "node:crypto";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import {
  defaultNearThreshold,
  exactDuplicateGroups,
  FALLBACK_NEAR_THRESHOLD,
  nearDuplicateGroups,
  nearDuplicatesOf,
  type NearGroup,
} from "../../src/engine/duplicates.ts";
import { ImageEmbedder } from "../../src/engine/embed.ts";
import { imohashFile } from "../../src/engine/identity.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { Ingestor } from "../../src/engine/ingest.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { longestEventLoopGap } from "../fixtures/event-loop.ts";
import { photoFiles, writeNearDupSet, type LabelledImage } from "../fixtures/near-dup-set.ts";

const ORIGINALS = ["aero1.jpg", "astronaut.png", "chelsea.png", "fruits.jpg", "starry_night.jpg"];

let root: string;
let photos: string;
let model: ResolvedModel;
let store: IndexStore;
let labelled: LabelledImage[];
const exactCopy = { of: "", path: "" };
const tiffs: string[] = [];

/** Two uncompressed TIFFs of one size that differ only between imohash's three 16 KiB samples. */
async function imohashCollisionPair(dir: string): Promise<string[]> {
  const all = photoFiles();
  const src = all.find((p) => basename(p) === "coffee.png")!;
  const tiff = await loadSharp()(src).resize(320, 320, { fit: "cover" }).tiff({ compression: "none" }).toBuffer();
  const changed = Buffer.from(tiff);
  // Well past the first sample and before the middle one: pixel rows of the only strip.
  for (let i = 40_000; i < 60_000; i++) changed[i] = 255 - changed[i]!;
  const a = join(dir, "collide-a.tif"), b = join(dir, "collide-b.tif");
  writeFileSync(a, tiff);
  writeFileSync(b, changed);
  return [a, b];
}

function sourceOf(path: string): string {
  return labelled.find((l) => l.path === path)?.source ?? basename(path);
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "imgd-dups-"));
  photos = join(root, "photos");
  const all = photoFiles();
  labelled = await writeNearDupSet(photos, all.filter((p) => ORIGINALS.includes(basename(p))), 4, all);
  // A byte-identical copy under another name and folder.
  mkdirSync(join(photos, "backup"));
  exactCopy.of = join(photos, "aero1.jpg");
  exactCopy.path = join(photos, "backup", "aero1 (copy).jpg");
  copyFileSync(exactCopy.of, exactCopy.path);
  labelled.push({ path: exactCopy.path, source: "aero1", kind: "original" });
  tiffs.push(...(await imohashCollisionPair(photos)));
  for (const t of tiffs) labelled.push({ path: t, source: "coffee-tiff", kind: "original" });

  model = await resolveModel("test-clip", modelSearchDirs(join(import.meta.dir, "../../models")));
  const index = join(root, "index");
  await runIndex({ roots: [photos], indexDir: index, model, batchSize: 16, threads: 1 });
  store = await IndexStore.open(index);
}, 120_000);

afterAll(async () => {
  await store?.close();
});

describe("exact duplicates", () => {
  test("a byte-identical copy is grouped with its original, confirmed by the sha256 of the whole file", async () => {
    const report = await exactDuplicateGroups(store);
    expect(report.groups.length).toBe(1);
    const [group] = report.groups;
    expect(group!.images.map((i) => i.path).sort()).toEqual([exactCopy.of, exactCopy.path].sort());
    expect(group!.sha256).toBe(createHash("sha256").update(readFileSync(exactCopy.of)).digest("hex"));
    expect(report.unreadable).toEqual([]);
  });

  test("two files with the same imohash but different content are not duplicates", async () => {
    const [a, b] = tiffs;
    expect(await imohashFile(a!)).toBe(await imohashFile(b!));
    expect(readFileSync(a!).equals(readFileSync(b!))).toBe(false);
    const report = await exactDuplicateGroups(store);
    const grouped = report.groups.flatMap((g) => g.images.map((i) => i.path));
    expect(grouped).not.toContain(a);
    expect(grouped).not.toContain(b);
    expect(report.collisions).toBe(2);
  });
});

describe("near duplicates", () => {
  const sources = (groups: NearGroup[]) => groups.map((g) => [...new Set(g.images.map((i) => sourceOf(i.path)))]);

  test("at the model's default threshold each group is one photo with all its resized, re-encoded and cropped copies", async () => {
    const threshold = defaultNearThreshold(model.manifest.name);
    expect(threshold).not.toBe(FALLBACK_NEAR_THRESHOLD); // test-clip has a measured default
    const groups = await nearDuplicateGroups(store, threshold);
    for (const s of sources(groups)) expect(s.length).toBe(1);
    const expected = new Map<string, string[]>();
    for (const l of labelled) if (l.kind !== "unrelated") expected.set(l.source, [...(expected.get(l.source) ?? []), l.path]);
    const found = new Map(groups.map((g) => [sourceOf(g.images[0]!.path), g.images.map((i) => i.path).sort()]));
    expect([...found.keys()].sort()).toEqual([...expected.keys()].sort());
    for (const [source, paths] of expected) expect(found.get(source)).toEqual(paths.sort());
    for (const g of groups) for (const i of g.images) expect(i.similarity).toBeGreaterThanOrEqual(threshold);
  });

  test("a stricter threshold only splits groups, never joins new images", async () => {
    const loose = await nearDuplicateGroups(store, defaultNearThreshold(model.manifest.name));
    const strict = await nearDuplicateGroups(store, 0.99999);
    const looseGroupOf = new Map(loose.flatMap((g, n) => g.images.map((i) => [i.id, n] as const)));
    for (const g of strict) expect(new Set(g.images.map((i) => looseGroupOf.get(i.id))).size).toBe(1);
    expect(strict.flatMap((g) => g.images).length).toBeLessThan(loose.flatMap((g) => g.images).length);
    // The byte-identical pair scores 1 and survives any threshold.
    expect(strict.some((g) => g.images.some((i) => i.path === exactCopy.path))).toBe(true);
  });

  test("groups larger than the neighbours asked for still join up (the search widens)", async () => {
    const threshold = defaultNearThreshold(model.manifest.name);
    const wide = await nearDuplicateGroups(store, threshold, { k: 16, pageSize: 5 });
    const narrow = await nearDuplicateGroups(store, threshold, { k: 1, pageSize: 5 });
    expect(narrow.map((g) => g.images.map((i) => i.id))).toEqual(wide.map((g) => g.images.map((i) => i.id)));
    expect(Math.max(...wide.map((g) => g.images.length))).toBeGreaterThan(2);
  });

  test("nearDuplicatesOf a copy's embedding finds its original and siblings, and nothing else", async () => {
    const copy = labelled.find((l) => l.source === "chelsea" && l.kind === "q60")!;
    const id = [...(await store.knownFiles()).values()].find((f) => f.path === copy.path)!.id;
    const vector = (await store.getEmbedding(id))!;
    const near = await nearDuplicatesOf(store, vector, defaultNearThreshold(model.manifest.name));
    expect(near.map((n) => n.path).sort()).toEqual(labelled.filter((l) => l.source === "chelsea").map((l) => l.path).sort());
    expect(near[0]!.id).toBe(id);
    for (let i = 1; i < near.length; i++) expect(near[i]!.similarity).toBeLessThanOrEqual(near[i - 1]!.similarity);
    expect((await nearDuplicatesOf(store, vector, 0.5, 2)).length).toBe(2);
  });

  test("a threshold outside (0, 1] is refused", async () => {
    await expect(nearDuplicateGroups(store, 0)).rejects.toThrow(/threshold/);
    await expect(nearDuplicateGroups(store, 1.5)).rejects.toThrow(/threshold/);
    await expect(nearDuplicatesOf(store, new Float32Array(store.dims), Number.NaN)).rejects.toThrow(/threshold/);
  });
});

describe("ingest", () => {
  test("counts uploads that an indexed image is a near duplicate of", async () => {
    const sharp = loadSharp();
    const original = join(photos, "fruits.jpg");
    const shrunk = await sharp(original).resize(200).jpeg({ quality: 70 }).toBuffer();
    const other = await sharp(photoFiles().find((p) => basename(p) === "smarties.png")!).jpeg().toBuffer();
    const embedder = await ImageEmbedder.open(model, { threads: 1 });
    try {
      const ingestor = new Ingestor({ store, embedder, uploadsDir: join(root, "uploads") });
      const report = await ingestor.ingest([
        { name: "fruits-small.jpg", bytes: new Uint8Array(shrunk) },
        { name: "smarties.jpg", bytes: new Uint8Array(other) },
      ]);
      expect(report.processed).toBe(2);
      expect(report.nearDuplicates).toBe(1);
      const strict = new Ingestor({ store, embedder, uploadsDir: join(root, "uploads"), nearThreshold: 1 });
      const again = await strict.ingest([{ name: "fruits-q50.jpg", bytes: new Uint8Array(await sharp(original).jpeg({ quality: 50 }).toBuffer()) }]);
      expect(again.processed).toBe(1);
      expect(again.nearDuplicates).toBe(0);
    } finally {
      await embedder.close();
    }
  });
});

describe("near duplicates at a low threshold", () => {
  let many: IndexStore;

  beforeAll(async () => {
    // 400 small images of distinct colours: at a cosine of 1e-6 each one's neighbours are the whole index.
    const dir = join(root, "many");
    mkdirSync(dir);
    const sharp = loadSharp();
    for (let i = 0; i < 400; i++) {
      const background = { r: (i * 37) % 256, g: (i * 91) % 256, b: Math.floor(i / 2) };
      await sharp({ create: { width: 32, height: 32, channels: 3, background } }).png().toFile(join(dir, `c${i}.png`));
    }
    const index = join(root, "many-index");
    await runIndex({ roots: [dir], indexDir: index, model, batchSize: 32, threads: 1 });
    many = await IndexStore.open(index);
  }, 120_000);

  afterAll(async () => {
    await many?.close();
  });

  test("lets the event loop run all along (inside the server, other requests are answered meanwhile)", async () => {
    const { result: groups, maxGap, ms } = await longestEventLoopGap(() => nearDuplicateGroups(many, 1e-6), 2);
    expect(groups.length).toBe(1);
    expect(groups[0]!.images.length).toBe(400);
    // Before, one page of images was searched in one go: a single gap as long as the whole run.
    expect(maxGap).toBeLessThan(ms / 3);
    expect(maxGap).toBeLessThan(250);
  }, 120_000);
});
