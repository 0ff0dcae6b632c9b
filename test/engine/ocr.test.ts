import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { AnalysisStage } from "../../src/engine/analysis/stage.ts";
import { decodeImage } from "../../src/engine/decode.ts";
import { loadDuckDB } from "../../src/engine/native.ts";
import { dbPostprocess, detInputSize, readingOrder } from "../../src/engine/ocr/ocr-detect.ts";
import { distance, type Quad } from "../../src/engine/ocr/ocr-geometry.ts";
import { loadDictionary, OCR_MODEL, OCR_PACKAGE, packagedOcrDir, resolveOcrModel } from "../../src/engine/ocr/ocr-model.ts";
import { ctcGreedyDecode } from "../../src/engine/ocr/ocr-recognize.ts";
import { createOcrStage, type OcrLine } from "../../src/engine/ocr/ocr-stage.ts";
import { OCR_DDL, readOcrLines, textInFilterSql, writeOcrLines } from "../../src/engine/ocr/ocr-table.ts";
import { textTerms } from "../../src/engine/ocr/ocr-terms.ts";
import { OCR_CASES, PHOTOS, plantedWords, writeOcrPhotos, type OcrPhotoCase } from "./ocr-photos.ts";

const DB = { detThresh: 0.3, boxThresh: 0.6, unclipRatio: 1.5, maxCandidates: 1000 };

/** Fills the pixels of `map` whose centres are inside a rectangle centred at (cx, cy), turned by `deg`. */
function paintRect(map: Float32Array, width: number, cx: number, cy: number, w: number, h: number, deg: number, p: number) {
  const a = (deg * Math.PI) / 180;
  for (let i = 0; i < map.length; i++) {
    const x = (i % width) - cx;
    const y = Math.floor(i / width) - cy;
    const u = x * Math.cos(a) + y * Math.sin(a);
    const v = -x * Math.sin(a) + y * Math.cos(a);
    if (Math.abs(u) <= w / 2 && Math.abs(v) <= h / 2) map[i] = p;
  }
}

describe("DB postprocess", () => {
  test("turns each confident blob into one unclipped rectangle scaled to the image, and drops weak and tiny ones", () => {
    const [w, h] = [200, 120];
    const map = new Float32Array(w * h).fill(0.05);
    for (let y = 30; y < 50; y++) for (let x = 20; x < 80; x++) map[y * w + x] = 0.9; // 60x20 px of text
    paintRect(map, w, 140, 80, 70, 16, 30, 0.8); // a line turned by 30 degrees
    for (let y = 90; y < 110; y++) for (let x = 10; x < 60; x++) map[y * w + x] = 0.45; // above thresh, below box_thresh
    for (let y = 5; y < 7; y++) for (let x = 150; x < 152; x++) map[y * w + x] = 0.99; // 2x2: too small

    const boxes = readingOrder(dbPostprocess(map, w, h, DB, { width: 2 * w, height: 2 * h }));
    expect(boxes).toHaveLength(2);

    // Axis-aligned blob: pixel centres span 59 x 19; unclip grows each side by area * 1.5 / perimeter.
    const d = (59 * 19 * 1.5) / (2 * (59 + 19));
    const [tl, tr, br, bl] = boxes[0]!.quad;
    expect(boxes[0]!.score).toBeCloseTo(0.9, 2);
    expect(tl[0]).toBeCloseTo(Math.round(2 * (20 - d)), 0);
    expect(tl[1]).toBeCloseTo(Math.round(2 * (30 - d)), 0);
    expect(br[0]).toBeCloseTo(Math.round(2 * (79 + d)), 0);
    expect(br[1]).toBeCloseTo(Math.round(2 * (49 + d)), 0);
    expect(tr[1]).toBe(tl[1]);
    expect(bl[0]).toBe(tl[0]);

    // Rotated blob: the long side keeps the blob's angle, and the corners go top-left, top-right, bottom-right, bottom-left.
    const q = boxes[1]!.quad;
    const angle = (Math.atan2(q[1][1] - q[0][1], q[1][0] - q[0][0]) * 180) / Math.PI;
    expect(Math.abs(angle - 30)).toBeLessThan(3);
    expect(distance(q[0], q[1])).toBeGreaterThan(distance(q[0], q[3]) * 2);
    expect(q[0][0]).toBeLessThan(q[1][0]);
    expect(q[3][1]).toBeGreaterThan(q[0][1]);
  });

  test("an empty map gives no boxes", () => {
    expect(dbPostprocess(new Float32Array(64 * 32), 64, 32, DB, { width: 64, height: 32 })).toEqual([]);
  });

  test("the detector input is the image scaled into the limit and rounded to multiples of 32", () => {
    expect(detInputSize(3000, 2000, 960)).toEqual({ width: 960, height: 640 });
    expect(detInputSize(500, 333, 960)).toEqual({ width: 512, height: 320 });
    expect(detInputSize(10, 10, 960)).toEqual({ width: 32, height: 32 });
  });

  test("reading order is top to bottom, and left to right for boxes on one line", () => {
    const box = (x: number, y: number) => ({ quad: [[x, y], [x + 10, y], [x + 10, y + 5], [x, y + 5]] as Quad });
    const sorted = readingOrder([box(100, 52), box(0, 100), box(10, 50), box(50, 55)]);
    expect(sorted.map((b) => b.quad[0][0])).toEqual([10, 50, 100, 0]);
  });
});

describe("CTC greedy decode", () => {
  test("merges repeats, drops blanks, keeps a repeat split by a blank, and scores the kept characters", () => {
    const chars = ["", "a", "b", "c", " "];
    // Most likely class per step: a a _ a b b _ c c " " a
    const path = [1, 1, 0, 1, 2, 2, 0, 3, 3, 4, 1];
    const top = [0.9, 0.8, 0.7, 0.6, 0.95, 0.5, 0.99, 0.85, 0.6, 0.75, 0.65];
    const probs = new Float32Array(path.length * chars.length);
    path.forEach((k, t) => {
      for (let c = 0; c < chars.length; c++) probs[t * chars.length + c] = c === k ? top[t]! : (1 - top[t]!) / (chars.length - 1);
    });
    const out = ctcGreedyDecode(probs, path.length, chars.length, chars);
    expect(out.text).toBe("aabc a");
    // The first step of each kept run: t = 0, 3, 4, 7, 9, 10.
    const kept = [0, 3, 4, 7, 9, 10].map((t) => top[t]!);
    expect(out.score).toBeCloseTo(kept.reduce((s, p) => s + p, 0) / kept.length, 5);
  });

  test("all blanks read as nothing with score 0", () => {
    const probs = new Float32Array([0.9, 0.1, 0.8, 0.2]);
    expect(ctcGreedyDecode(probs, 2, 2, ["", "x"])).toEqual({ text: "", score: 0 });
  });
});

describe("text terms", () => {
  test("lowercase, fold accents and full-width forms, split on non-letters, one term per Han character", () => {
    expect(textTerms("Harbour.2024 ＥＸＩＴ Café-Ünïcode 出口")).toEqual(["harbour", "2024", "exit", "cafe", "unicode", "出", "口"]);
  });

  test("a filter with no word is refused with a reason", () => {
    expect(() => textInFilterSql(" .,! ")).toThrow(/no word/);
  });
});

describe("OCR model files", () => {
  let tree: string;
  beforeAll(() => {
    tree = mkdtempSync(join(tmpdir(), "imgd-ocr-tree-"));
  });
  afterAll(() => rmSync(tree, { recursive: true, force: true }));

  test("come from the installed npm package, and the dictionary matches the recogniser's classes", async () => {
    const model = await resolveOcrModel([]);
    expect(model.paths.det).toContain(join("node_modules", OCR_PACKAGE, "assets"));
    const chars = loadDictionary(model.paths.dict);
    expect(chars[0]).toBe("");
    expect(chars[chars.length - 1]).toBe(" ");
    expect(chars).toHaveLength(6623 + 2);
  });

  test("are found in a compiled binary's unpacked native tree the same way", async () => {
    const pkg = join(tree, "node_modules", OCR_PACKAGE);
    const installed = join(import.meta.dir, "..", "..", "node_modules", OCR_PACKAGE);
    mkdirSync(pkg, { recursive: true });
    cpSync(join(installed, "package.json"), join(pkg, "package.json"));
    cpSync(join(installed, "node.js"), join(pkg, "node.js"));
    symlinkSync(join(installed, "assets"), join(pkg, "assets"));
    expect(packagedOcrDir(tree)).toBe(join(pkg, "assets"));
    const model = await resolveOcrModel([], tree);
    expect(model.paths.rec.startsWith(join(pkg, "assets"))).toBe(true);
  });

  test("a damaged copy in a models dir is refused with the file's name", async () => {
    const dir = join(tree, "models", OCR_MODEL);
    const model = await resolveOcrModel([]);
    mkdirSync(dir, { recursive: true });
    for (const p of Object.values(model.paths)) cpSync(p, join(dir, p.split("/").pop()!));
    writeFileSync(join(dir, "ppocr_keys_v1.txt"), "a\nb\n");
    await expect(resolveOcrModel([join(tree, "models")])).rejects.toThrow(/ppocr_keys_v1\.txt is not the ocr-ppocrv4 dict file/);
  });
});

describe("OCR stage on photographs with planted words", () => {
  let stage: AnalysisStage<OcrLine[]>;
  let dir: string;
  const results = new Map<string, { case: OcrPhotoCase; lines: OcrLine[]; scale: number }>();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "imgd-ocr-"));
    stage = await createOcrStage({ threads: 2 });
    for (const { path, case: c } of await writeOcrPhotos(dir)) {
      const image = await decodeImage(path, { targetShortSide: stage.minShortSide });
      results.set(c.name, { case: c, lines: await stage.analyze(image), scale: image.sourceWidth / image.width });
    }
  }, 120_000);
  afterAll(async () => {
    await stage?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const words = (lines: OcrLine[]) => new Set(lines.flatMap((l) => l.text.split(/[^\p{L}\p{N}]+/u)));

  test("reads most planted words exactly (case included)", () => {
    let planted = 0;
    let found = 0;
    for (const { case: c, lines } of results.values()) {
      const read = words(lines);
      for (const w of plantedWords(c)) {
        planted++;
        if (read.has(w)) found++;
      }
    }
    console.log(`[ocr] planted words read exactly: ${found}/${planted} = ${((100 * found) / planted).toFixed(1)} %`);
    expect(planted).toBe(OCR_CASES.flatMap(plantedWords).length);
    expect(found / planted).toBeGreaterThanOrEqual(0.85);
  });

  for (const c of OCR_CASES.filter((c) => !c.hard)) {
    test(`reads ${plantedWords(c).join(", ")} (${c.name}) with its box over the planted line, in source pixels`, () => {
      const { lines, scale } = results.get(c.name)!;
      const read = words(lines);
      for (const w of plantedWords(c)) expect(read).toContain(w);
      for (const planted of c.lines) {
        const line = lines.find((l) => planted.text.split(" ").every((w) => words([l]).has(w)))!;
        expect(line).toBeDefined();
        expect(line.score).toBeGreaterThanOrEqual(0.5);
        const cx = (line.box[0] + line.box[2] + line.box[4] + line.box[6]) / 4;
        const cy = (line.box[1] + line.box[3] + line.box[5] + line.box[7]) / 4;
        expect(Math.abs(cx - planted.cx)).toBeLessThan(planted.size);
        expect(Math.abs(cy - planted.cy)).toBeLessThan(planted.size / 2);
      }
      if (c.name === "tunnel-camera-jpeg") expect(scale).toBeGreaterThan(1); // decoded shrunk, boxes mapped back
    });
  }

  test("an upside-down line is turned over, so its box starts where the text starts (bottom right)", () => {
    const { lines, case: c } = results.get("garden-upside-down")!;
    const [x0, y0, x1] = lines.find((l) => l.text === "Garden")!.box;
    expect(x0).toBeGreaterThan(c.lines[0]!.cx);
    expect(x1).toBeLessThan(c.lines[0]!.cx);
    expect(y0).toBeGreaterThan(c.lines[0]!.cy);
  });

  test("a photo without text gives no lines, and a tiny image is no error", async () => {
    expect(await stage.analyze(await decodeImage(join(PHOTOS, "chelsea.png")))).toEqual([]);
    const tiny = { data: new Uint8Array(8 * 8 * 3).fill(200), width: 8, height: 8, sourceWidth: 8, sourceHeight: 8 };
    expect(await stage.analyze({ ...tiny, format: "raw", exif: { takenAt: null, cameraMake: null, cameraModel: null } })).toEqual([]);
  });

  test("the stage contract: name, counts, a decode size above CLIP's, tables keyed by image_id", async () => {
    expect(stage.name).toBe("ocr");
    expect(stage.minShortSide).toBeGreaterThan(224);
    expect(stage.counts(results.get("parking-two-signs")!.lines)).toEqual({ ocr: 2 });
    expect(stage.ddl.filter((d) => /CREATE TABLE/.test(d)).every((d) => /image_id BIGINT/.test(d))).toBe(true);
    const strict = await createOcrStage({ threads: 1, minScore: 0.9, classify: false });
    expect(strict.version).not.toBe(stage.version);
    await strict.close();
  });

  describe("stored in DuckDB", () => {
    let conn: DuckDBConnection;
    const ids = { exit: 1, station: 2, parking: 3, cafe: 4 };

    beforeAll(async () => {
      const duck = loadDuckDB();
      conn = await (await duck.DuckDBInstance.create(":memory:")).connect();
      await conn.run("CREATE TABLE images (id BIGINT PRIMARY KEY, path VARCHAR)");
      await conn.run("INSERT INTO images VALUES (1, 'exit'), (2, 'station'), (3, 'parking'), (4, 'cafe'), (5, 'none')");
      for (const d of OCR_DDL) await conn.run(d);
      const cafe: OcrLine = { text: "CAFÉ Ünïcode", score: 0.9, box: [1, 2, 3, 4, 5, 6, 7, 8] };
      await conn.run("BEGIN TRANSACTION");
      await writeOcrLines(conn, [
        { imageId: ids.exit, result: results.get("exit-sign")!.lines },
        { imageId: ids.station, result: results.get("station")!.lines },
        { imageId: ids.parking, result: results.get("parking-two-signs")!.lines },
        { imageId: ids.cafe, result: [cafe] },
        { imageId: 5, result: [] },
      ]);
      await conn.run("COMMIT");
    });
    afterAll(() => conn?.closeSync());

    async function matching(words: string): Promise<number[]> {
      const { sql, params } = textInFilterSql(words);
      const rows = (await conn.runAndReadAll(`SELECT id FROM images WHERE ${sql} ORDER BY id`, params)).getRows();
      return rows.map((r) => Number(r[0]));
    }

    test("--text-in finds images by any recognised word, ignoring case and accents, all words required", async () => {
      expect(await matching("exit")).toEqual([ids.exit]);
      expect(await matching("EXIT")).toEqual([ids.exit]);
      expect(await matching("station central")).toEqual([ids.station]);
      expect(await matching("market")).toEqual([ids.parking]);
      expect(await matching("café")).toEqual([ids.cafe]);
      expect(await matching("unicode cafe")).toEqual([ids.cafe]);
      expect(await matching("exit station")).toEqual([]);
      expect(await matching("exi")).toEqual([]);
    });

    test("lines come back in reading order with their boxes, and a rewrite after the pipeline's delete adds no duplicates", async () => {
      const before = await readOcrLines(conn, ids.parking);
      expect(before.map((l) => l.text)).toEqual(results.get("parking-two-signs")!.lines.map((l) => l.text));
      expect(before[0]!.box).toHaveLength(8);
      await conn.run("BEGIN TRANSACTION");
      for (const table of ["ocr_lines", "ocr_terms"]) await conn.run(`DELETE FROM ${table} WHERE image_id = ${ids.parking}`);
      await writeOcrLines(conn, [{ imageId: ids.parking, result: before }]);
      await conn.run("COMMIT");
      expect(await readOcrLines(conn, ids.parking)).toEqual(before);
      const terms = (await conn.runAndReadAll(`SELECT count(*) - count(DISTINCT term) FROM ocr_terms WHERE image_id = ${ids.parking}`)).getRows();
      expect(Number(terms[0]![0])).toBe(0);
      expect(await matching("parking")).toEqual([ids.parking]);
    });
  });
});
