// Faces: SCRFD decoding and NMS, ArcFace alignment and blur, and the stage end to end on generated scenes with
// planted faces (PNG, a shrink-on-load JPEG, an EXIF-rotated JPEG), through the generated test-scrfd and
// test-arcface models, onnxruntime, sharp and an in-memory DuckDB.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { buildTestArcface, buildTestScrfd, generateTestFaces, SKIN_RGB } from "../../models/test/generate-faces.ts";
import type { AnalysisStage } from "../../src/engine/analysis/stage.ts";
import { builtInStageManifests } from "../../src/engine/analysis/stage-model.ts";
import { decodeImage } from "../../src/engine/decode.ts";
import {
  alignFace,
  ALIGNED_SIZE,
  applySimilarity,
  ARCFACE_TEMPLATE,
  estimateSimilarity,
  invertSimilarity,
  laplacianVariance,
  warpSimilarity,
  type Similarity,
} from "../../src/engine/faces/face-align.ts";
import { anchorCenters, decodeScrfd, detectGeometry, nmsFaces, scrfdLayout, type RawFace, type ScrfdOutput } from "../../src/engine/faces/face-detect.ts";
import { FaceDetector } from "../../src/engine/faces/face-detector.ts";
import { resolveFaceDetector, resolveFaceEmbedder } from "../../src/engine/faces/face-models.ts";
import { createFacesStage, type FaceResult, type WrittenFace } from "../../src/engine/faces/faces-stage.ts";
import { loadDuckDB, loadSharp } from "../../src/engine/native.ts";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import type { DecodedImage } from "../../src/engine/types.ts";

const REPO = join(import.meta.dir, "..", "..");
const PHOTOS = join(REPO, "..", "shared", "photos");
const SHARED_MODELS = join(REPO, "..", "shared", "models");

let modelsDir: string;
let stage: AnalysisStage<FaceResult[]>;

beforeAll(async () => {
  // Generated into a temp models dir, so this file does not depend on `npm test`'s generate step.
  modelsDir = mkdtempSync(join(tmpdir(), "imgd-faces-"));
  generateTestFaces(modelsDir);
  stage = await createFacesStage({ modelDirs: [modelsDir], detector: "test-scrfd", embedder: "test-arcface", threads: 1 });
});

afterAll(async () => {
  await stage?.close();
  rmSync(modelsDir, { recursive: true, force: true });
});

describe("SCRFD decoding", () => {
  test("anchor centres are (col * stride, row * stride), row-major, each repeated once per anchor", () => {
    const c = Array.from(anchorCenters(32, 16, 8, 2));
    // 4 columns x 2 rows, 2 anchors each.
    expect(c.length).toBe(4 * 2 * 2 * 2);
    expect(c.slice(0, 8)).toEqual([0, 0, 0, 0, 8, 0, 8, 0]);
    expect(c.slice(16, 20)).toEqual([0, 8, 0, 8]);
    expect(c.slice(-2)).toEqual([24, 8]);
  });

  test("the layout follows the output count: 9 is strides 8/16/32 with 2 anchors, 15 is 8..128 with 1", () => {
    expect(scrfdLayout(9)).toEqual({ strides: [8, 16, 32], anchorsPerLocation: 2 });
    expect(scrfdLayout(15)).toEqual({ strides: [8, 16, 32, 64, 128], anchorsPerLocation: 1 });
    expect(() => scrfdLayout(6)).toThrow(/no landmark outputs/);
    expect(() => scrfdLayout(7)).toThrow(/not an SCRFD layout/);
  });

  // A 64x64 input: 8x8, 4x4 and 2x2 locations, 2 anchors each.
  function emptyOutputs(): ScrfdOutput[] {
    const counts = [128, 32, 8];
    return [1, 4, 10].flatMap((per) => counts.map((n) => ({ data: new Float32Array(n * per), dims: [n, per] })));
  }
  function plant(outs: ScrfdOutput[], level: number, anchor: number, score: number, dist: number[], kps: number[]): void {
    outs[level]!.data[anchor] = score;
    outs[level + 3]!.data.set(dist, anchor * 4);
    outs[level + 6]!.data.set(kps, anchor * 10);
  }

  test("distances and landmark offsets are stride units from the anchor centre; NMS keeps the best of overlaps", () => {
    const outs = emptyOutputs();
    // Stride 16, row 1, col 2, second anchor: index (1 * 4 + 2) * 2 + 1 = 13, centre (32, 16).
    plant(outs, 1, 13, 0.9, [1, 0.5, 2, 1.5], [0.25, -0.5, 1, 0, 0, 0.5, -1, 1, 0.5, 1]);
    // Stride 8, row 2, col 4, first anchor: index (2 * 8 + 4) * 2 = 40, centre (32, 16): nearly the same box, lower.
    plant(outs, 0, 40, 0.8, [2, 1, 4, 3], new Array(10).fill(0));
    // Stride 32, row 1, col 1, first anchor: index (1 * 2 + 1) * 2 = 6, centre (32, 32): far from the others.
    plant(outs, 2, 6, 0.7, [0.1, 0.1, 0.1, 0.1], new Array(10).fill(0));
    // Below the threshold: dropped before NMS.
    plant(outs, 0, 0, 0.49, [1, 1, 1, 1], new Array(10).fill(0));
    const faces = decodeScrfd(outs, { inputWidth: 64, inputHeight: 64, threshold: 0.5, nmsThreshold: 0.4 });
    expect(faces.map((f) => f.score)).toEqual([Math.fround(0.9), Math.fround(0.7)]);
    // By hand: box = (32 - 16, 16 - 8, 32 + 32, 16 + 24); landmark = centre + offset * 16.
    expect(faces[0]!.box).toEqual([16, 8, 64, 40]);
    expect(faces[0]!.landmarks).toEqual([36, 8, 48, 16, 32, 24, 16, 32, 40, 32]);
    expect(faces[1]!.box.map((v) => Math.round(v * 10) / 10)).toEqual([28.8, 28.8, 35.2, 35.2]);
  });

  test("an output of the wrong size is refused with the sizes it expected", () => {
    const outs = emptyOutputs();
    outs[4] = { data: new Float32Array(5), dims: [5] };
    expect(() => decodeScrfd(outs, { inputWidth: 64, inputHeight: 64, threshold: 0.5, nmsThreshold: 0.4 })).toThrow(
      /bbox of stride 16 has 5 values .* expected 32 x 4/,
    );
  });

  test("NMS uses pixel-inclusive areas and keeps a box whose IoU is at or under the threshold", () => {
    const face = (box: RawFace["box"], score: number): RawFace => ({ box, score, landmarks: new Array(10).fill(0) as RawFace["landmarks"] });
    // Areas 10x10 = 100 each with +1; overlap 5 x 10 = 50; IoU = 50 / 150 = 1/3.
    const a = face([0, 0, 9, 9], 0.9);
    const b = face([5, 0, 14, 9], 0.8);
    expect(nmsFaces([b, a], 0.4)).toEqual([a, b]);
    expect(nmsFaces([b, a], 0.3)).toEqual([a]);
  });

  test("scrfd.py's fit: long side to the input, int() sizes, one scale for both axes", () => {
    expect(detectGeometry(1280, 720, 640, 640)).toEqual({ inputWidth: 640, inputHeight: 640, newWidth: 640, newHeight: 360, scale: 0.5 });
    const portrait = detectGeometry(720, 1280, 640, 640);
    expect([portrait.newWidth, portrait.newHeight, portrait.scale]).toEqual([360, 640, 0.5]);
    const odd = detectGeometry(1001, 1000, 640, 640);
    expect([odd.newWidth, odd.newHeight, odd.scale]).toEqual([640, 639, 0.639]);
    expect(detectGeometry(20000, 10, 640, 640).newHeight).toBe(1);
    expect(() => detectGeometry(0, 10, 640, 640)).toThrow(/no pixels/);
  });
});

describe("alignment", () => {
  const known: Similarity = { a: 1.7 * Math.cos(0.35), b: 1.7 * Math.sin(0.35), tx: 210.5, ty: -33.25 };
  const mapPoints = (t: Similarity, pts: ArrayLike<number>) =>
    Array.from({ length: pts.length / 2 }, (_, i) => applySimilarity(t, pts[2 * i]!, pts[2 * i + 1]!)).flat();

  test("the template maps onto itself by the identity", () => {
    const t = estimateSimilarity(ARCFACE_TEMPLATE, ARCFACE_TEMPLATE)!;
    for (const [got, want] of [[t.a, 1], [t.b, 0], [t.tx, 0], [t.ty, 0]]) expect(Math.abs(got! - want!)).toBeLessThan(1e-9);
  });

  test("landmarks moved by a known similarity give back its inverse, and land on the template", () => {
    const landmarks = mapPoints(known, ARCFACE_TEMPLATE);
    const t = estimateSimilarity(landmarks, ARCFACE_TEMPLATE)!;
    const want = invertSimilarity(known);
    for (const k of ["a", "b", "tx", "ty"] as const) expect(Math.abs(t[k] - want[k])).toBeLessThan(1e-3);
    const back = mapPoints(t, landmarks);
    back.forEach((v, i) => expect(Math.abs(v - ARCFACE_TEMPLATE[i]!)).toBeLessThan(1e-3));
  });

  test("mirrored landmarks still give a rotation, never a reflection (and a worse fit than the true face)", () => {
    const mirrored = mapPoints(known, ARCFACE_TEMPLATE).map((v, i) => (i % 2 === 0 ? 1000 - v : v));
    const t = estimateSimilarity(mirrored, ARCFACE_TEMPLATE)!;
    const residual = mapPoints(t, mirrored).reduce((s, v, i) => s + (v - ARCFACE_TEMPLATE[i]!) ** 2, 0);
    // a² + b² > 0 is the determinant of [[a, -b], [b, a]]: orientation is preserved.
    expect(t.a * t.a + t.b * t.b).toBeGreaterThan(0);
    expect(residual).toBeGreaterThan(1);
  });

  // A linear colour ramp: bilinear sampling reproduces it exactly, so a warp can be checked to the rounding.
  const ramp = (x: number, y: number): [number, number, number] => [20 + 0.4 * x, 30 + 0.3 * y, 200 - 0.2 * x - 0.1 * y];

  test("a synthetic image rendered through a known similarity is recovered by aligning on its landmarks", () => {
    // Source pixel (x, y) shows the ramp at crop position toCrop(x, y): `known` moved so that the crop, which spans
    // 112 / 1.7 source pixels, starts at (200, 150) inside the image. Its landmarks are toCrop⁻¹(template).
    const w = 480;
    const h = 360;
    const [ox, oy] = applySimilarity(known, 200, 150);
    const toCrop: Similarity = { ...known, tx: known.tx - ox, ty: known.ty - oy };
    const data = new Uint8Array(w * h * 3);
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const [u, v] = applySimilarity(toCrop, x, y);
        data.set(ramp(u, v).map((c) => Math.round(Math.min(255, Math.max(0, c)))), (y * w + x) * 3);
      }
    }
    const landmarks = mapPoints(invertSimilarity(toCrop), ARCFACE_TEMPLATE);
    const aligned = alignFace({ data, width: w, height: h }, landmarks)!;
    for (const k of ["a", "b", "tx", "ty"] as const) expect(Math.abs(aligned.transform[k] - toCrop[k])).toBeLessThan(1e-3);
    let worst = 0;
    for (let v = 0; v < ALIGNED_SIZE; v++) {
      for (let u = 0; u < ALIGNED_SIZE; u++) {
        const want = ramp(u, v);
        for (let c = 0; c < 3; c++) worst = Math.max(worst, Math.abs(aligned.pixels[(v * ALIGNED_SIZE + u) * 3 + c]! - want[c]!));
      }
    }
    // Rounding the source to 8 bits and the crop again: at most one level apart.
    expect(worst).toBeLessThanOrEqual(1);
  });

  test("outside the image the crop is black, as cv2.warpAffine's constant border", () => {
    const img = { data: new Uint8Array(10 * 10 * 3).fill(200), width: 10, height: 10 };
    const crop = warpSimilarity(img, { a: 1, b: 0, tx: 0, ty: 0 }, 20);
    expect(crop[(5 * 20 + 5) * 3]).toBe(200);
    expect(crop[(15 * 20 + 15) * 3]).toBe(0);
    // Half a pixel past the edge: half the value.
    const half = warpSimilarity(img, { a: 1, b: 0, tx: 0.5, ty: 0 }, 20);
    expect(half[(5 * 20 + 10) * 3]).toBe(100);
  });

  test("degenerate landmarks or an image without pixels give no crop instead of throwing", () => {
    const img = { data: new Uint8Array(50 * 50 * 3), width: 50, height: 50 };
    expect(alignFace(img, new Array(10).fill(25))).toBeNull();
    expect(alignFace(img, [1, 2, Number.NaN, 4, 5, 6, 7, 8, 9, 10])).toBeNull();
    expect(alignFace({ data: new Uint8Array(0), width: 0, height: 0 }, ARCFACE_TEMPLATE)).toBeNull();
    // Landmarks far outside the image: a black crop, not an error.
    const far = alignFace(img, ARCFACE_TEMPLATE.map((v) => v + 10_000))!;
    expect(far.pixels.every((v) => v === 0)).toBe(true);
  });

  test("blur: a flat crop has no Laplacian variance, a 1-pixel checkerboard has (4 x 255)², a blurred one less", () => {
    const n = 16;
    const flat = new Uint8Array(n * n * 3).fill(128);
    expect(laplacianVariance(flat, n, n)).toBe(0);
    const checker = new Uint8Array(n * n * 3);
    for (let i = 0; i < n * n; i++) checker.fill(((i % n) + Math.floor(i / n)) % 2 ? 255 : 0, i * 3, i * 3 + 3);
    expect(laplacianVariance(checker, n, n)).toBe(1020 * 1020);
    const soft = Uint8Array.from(checker, (v) => 96 + v / 4);
    expect(laplacianVariance(soft, n, n)).toBeLessThan(laplacianVariance(checker, n, n) / 10);
  });
});

interface PlantedFace {
  x: number;
  y: number;
  size: number;
  identity: number;
}

/** A bluish noisy background with skin-coloured squares, each with a dark 4x4 block pattern fixed by its identity. */
function scene(width: number, height: number, faces: PlantedFace[], seed: number): Uint8Array {
  const rand = mulberry32(seed);
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = 30 + Math.floor(rand() * 40);
    data[3 * i + 1] = 70 + Math.floor(rand() * 50);
    data[3 * i + 2] = 140 + Math.floor(rand() * 60);
  }
  for (const f of faces) {
    const bits = mulberry32(f.identity);
    const pattern = Array.from({ length: 16 }, () => bits() < 0.45);
    for (let y = f.y; y < f.y + f.size; y++) {
      for (let x = f.x; x < f.x + f.size; x++) {
        // The pattern fills the middle 60%, so the square's outline stays skin.
        const u = ((x - f.x) / f.size - 0.2) / 0.6;
        const v = ((y - f.y) / f.size - 0.2) / 0.6;
        const dark = u >= 0 && u < 1 && v >= 0 && v < 1 && pattern[Math.floor(v * 4) * 4 + Math.floor(u * 4)];
        data.set(dark ? [70, 40, 30] : SKIN_RGB, (y * width + x) * 3);
      }
    }
  }
  return data;
}

async function encoded(width: number, height: number, faces: PlantedFace[], seed: number, format: "png" | "jpeg"): Promise<Uint8Array> {
  const img = loadSharp()(scene(width, height, faces, seed), { raw: { width, height, channels: 3 } });
  const buf = format === "png" ? await img.png().toBuffer() : await img.jpeg({ quality: 95, chromaSubsampling: "4:4:4" }).toBuffer();
  return new Uint8Array(buf);
}

const boxOf = (f: PlantedFace) => [f.x, f.y, f.x + f.size, f.y + f.size];

function expectBox(got: number[], want: number[], tolerance: number): void {
  got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(tolerance));
}

function cosine(a: Float32Array, b: Float32Array): number {
  let dot = 0;
  for (let i = 0; i < a.length; i++) dot += a[i]! * b[i]!;
  return dot;
}

describe("faces stage on planted faces", () => {
  test("a PNG: the planted face's box and ArcFace-placed landmarks come back in source pixels", async () => {
    const face = { x: 300, y: 200, size: 160, identity: 1 };
    const image = await decodeImage(await encoded(800, 600, [face], 11, "png"), { targetShortSide: stage.minShortSide });
    const faces = await stage.analyze(image);
    expect(faces.length).toBe(1);
    // 800 -> 640 input: 2 input pixels are 2.5 source pixels.
    expectBox(faces[0]!.box, boxOf(face), 2.5);
    expect(faces[0]!.score).toBeGreaterThan(0.9);
    // The test detector puts the landmarks at the template's place in its box.
    const want = ARCFACE_TEMPLATE.map((v, i) => (i % 2 === 0 ? face.x : face.y) + (v / 112) * face.size);
    expectBox(faces[0]!.landmarks, want, 2.5);
    expect(faces[0]!.blur).toBeGreaterThan(0);
    expect(stage.counts(faces)).toEqual({ faces: 1 });
  });

  test("a camera-sized JPEG decoded shrunk on load still reports the box in source pixels", async () => {
    const face = { x: 1200, y: 800, size: 640, identity: 2 };
    const image = await decodeImage(await encoded(3200, 2400, [face], 12, "jpeg"), { targetShortSide: stage.minShortSide });
    expect(image.width).toBeLessThan(3200);
    expect([image.sourceWidth, image.sourceHeight]).toEqual([3200, 2400]);
    const faces = await stage.analyze(image);
    expect(faces.length).toBe(1);
    // 3200 -> 640 input: 2 input pixels are 10 source pixels.
    expectBox(faces[0]!.box, boxOf(face), 10);
  });

  test("an EXIF-rotated JPEG reports the box where the face shows after rotation", async () => {
    // Displayed 600x800 with the face at (150, 400); stored turned 90 degrees counter-clockwise, tagged orientation 6.
    const face = { x: 150, y: 400, size: 200, identity: 3 };
    const sharp = loadSharp();
    const displayed = scene(600, 800, [face], 13);
    const stored = await sharp(await sharp(displayed, { raw: { width: 600, height: 800, channels: 3 } }).rotate(270).png().toBuffer())
      .withMetadata({ orientation: 6 })
      .jpeg({ quality: 95, chromaSubsampling: "4:4:4" })
      .toBuffer();
    const image = await decodeImage(new Uint8Array(stored), { targetShortSide: stage.minShortSide });
    expect([image.width, image.height]).toEqual([600, 800]);
    const faces = await stage.analyze(image);
    expect(faces.length).toBe(1);
    // 800 -> 640 input: 2 input pixels are 2.5 source pixels.
    expectBox(faces[0]!.box, boxOf(face), 2.5);
  });

  test("embeddings are unit length; the same face in two photos is closer than two different faces", async () => {
    const a1 = { x: 300, y: 200, size: 160, identity: 21 };
    const a2 = { x: 80, y: 260, size: 240, identity: 21 };
    const b = { x: 300, y: 200, size: 160, identity: 22 };
    const embed = async (f: PlantedFace, seed: number) => {
      const image = await decodeImage(await encoded(800, 600, [f], seed, "png"));
      const faces = await stage.analyze(image);
      expect(faces.length).toBe(1);
      return faces[0]!.embedding;
    };
    const [ea1, ea2, eb] = [await embed(a1, 31), await embed(a2, 32), await embed(b, 33)];
    for (const e of [ea1, ea2, eb]) {
      expect(e.length).toBe(512);
      expect(Math.abs(cosine(e, e) - 1)).toBeLessThan(1e-5);
    }
    const same = cosine(ea1, ea2);
    const different = cosine(ea1, eb);
    expect(same).toBeGreaterThan(0.9);
    expect(same - different).toBeGreaterThan(0.3);
  });

  test("faces smaller than minFaceSize are skipped; the limit is part of the stage version", async () => {
    const image = await decodeImage(await encoded(640, 480, [{ x: 104, y: 104, size: 28, identity: 4 }], 14, "png"));
    const faces = await stage.analyze(image);
    expect(faces.length).toBe(1);
    expectBox(faces[0]!.box, [104, 104, 132, 132], 2);
    const strict = await createFacesStage({ modelDirs: [modelsDir], detector: "test-scrfd", embedder: "test-arcface", minFaceSize: 40 });
    try {
      expect(await strict.analyze(image)).toEqual([]);
      expect(strict.version).not.toBe(stage.version);
    } finally {
      await strict.close();
    }
  });

  test("an image with no face, a face cut by the border and an empty image do not throw", async () => {
    const none = await decodeImage(await encoded(320, 240, [], 15, "png"));
    expect(await stage.analyze(none)).toEqual([]);
    // Half the face is outside the image: the box is clipped, the crop's outside part is black.
    const cut = await decodeImage(await encoded(400, 300, [{ x: 300, y: 100, size: 100, identity: 5 }], 16, "png"));
    const faces = await stage.analyze(cut);
    expect(faces.length).toBe(1);
    expect(faces[0]!.box[2]).toBeLessThanOrEqual(400);
    const empty: DecodedImage = { data: new Uint8Array(0), width: 0, height: 0, sourceWidth: 0, sourceHeight: 0, format: "raw", exif: { takenAt: null, cameraMake: null, cameraModel: null } };
    expect(await stage.analyze(empty)).toEqual([]);
    // Pixels missing from a decoded image are a caller's bug: a clear error, not garbage faces.
    const truncated = { ...none, data: none.data.subarray(0, 100) };
    await expect(stage.analyze(truncated)).rejects.toThrow(/320x240 RGB image needs 230400 bytes, got 100/);
  });
});

describe("writing faces to DuckDB", () => {
  let conn: DuckDBConnection;

  beforeAll(async () => {
    const { DuckDBInstance } = loadDuckDB();
    conn = await (await DuckDBInstance.create(":memory:")).connect();
    for (const ddl of stage.ddl) await conn.run(ddl);
  });

  test("rows get ids from face_ids, keep box, landmarks, score, blur and the embedding, and reach the hook", async () => {
    const image = await decodeImage(await encoded(800, 600, [{ x: 300, y: 200, size: 160, identity: 6 }], 17, "png"));
    const [face] = await stage.analyze(image);
    const other = { ...face!, box: [1, 2, 3, 4] as FaceResult["box"], score: 0.75 };
    const hooked: WrittenFace[][] = [];
    const writer = await createFacesStage({
      modelDirs: [modelsDir],
      detector: "test-scrfd",
      embedder: "test-arcface",
      onFacesWritten: async (c, faces) => {
        // The hook runs on the same connection, after the rows are in.
        const n = await c.runAndReadAll("SELECT count(*) FROM faces");
        expect(Number(n.getRows()[0]![0])).toBe(faces.length + hooked.flat().length);
        hooked.push(faces);
      },
    });
    try {
      await writer.write(conn, [
        { imageId: 7, result: [face!] },
        { imageId: 9, result: [face!, other] },
        { imageId: 11, result: [] },
      ]);
      await writer.write(conn, [{ imageId: 12, result: [other] }]);
      await writer.write(conn, [{ imageId: 13, result: [] }]);
    } finally {
      await writer.close();
    }
    expect(hooked.map((h) => h.map((f) => f.imageId))).toEqual([[7, 9, 9], [12]]);
    const reader = await conn.runAndReadAll("SELECT id, image_id, x0, y0, x1, y1, landmarks, score, blur, embedding, person_id FROM faces ORDER BY id");
    const rows = reader.getRowObjectsJS() as Record<string, unknown>[];
    expect(rows.map((r) => Number(r.id))).toEqual(hooked.flat().map((f) => f.id));
    expect(new Set(rows.map((r) => r.id)).size).toBe(4);
    expect(rows.map((r) => Number(r.image_id))).toEqual([7, 9, 9, 12]);
    const first = rows[0]!;
    expect([first.x0, first.y0, first.x1, first.y1]).toEqual(face!.box.map(Math.fround));
    expect(first.landmarks).toEqual(face!.landmarks.map(Math.fround));
    expect(first.score).toBe(Math.fround(face!.score));
    expect(first.blur).toBe(Math.fround(face!.blur));
    expect(first.person_id).toBeNull();
    const blob = first.embedding as Uint8Array;
    expect(blob.length).toBe(512 * 4);
    expect(Array.from(new Float32Array(new Uint8Array(blob).buffer))).toEqual(Array.from(face!.embedding));
    expect([rows[2]!.x0, rows[2]!.score]).toEqual([1, 0.75]);
    expect(hooked[0]![0]!.embedding).toBe(face!.embedding);
  });
});

describe("face models", () => {
  test("test-scrfd has det_10g's signature: input.1 and 9 outputs of 12800/3200/800 anchors x 1, 4, 10", async () => {
    const detector = await FaceDetector.open(resolveFaceDetector("test-scrfd", [modelsDir]));
    try {
      const { tensor } = detector.prepare({ data: new Uint8Array(64 * 48 * 3), width: 64, height: 48 });
      const outs = await detector.infer(tensor);
      expect(outs.map((o) => o.dims)).toEqual([[12800, 1], [3200, 1], [800, 1], [12800, 4], [3200, 4], [800, 4], [12800, 10], [3200, 10], [800, 10]]);
    } finally {
      await detector.close();
    }
  });


  test("the generated models are byte-for-byte deterministic", () => {
    expect(Buffer.compare(buildTestScrfd(), buildTestScrfd())).toBe(0);
    expect(Buffer.compare(buildTestArcface(), buildTestArcface())).toBe(0);
  });

  test("built-in manifests: real SCRFD and ArcFace with their sources, and the test pair", () => {
    const byName = new Map(builtInStageManifests().map((m) => [m.name, m]));
    for (const [name, task] of [["scrfd-10g", "face-detect"], ["scrfd-500m", "face-detect"], ["arcface-r50", "face-embed"], ["test-scrfd", "face-detect"], ["test-arcface", "face-embed"]]) {
      expect(byName.get(name!)?.task).toBe(task as "face-detect");
    }
    expect(byName.get("scrfd-10g")!.source).toContain("buffalo_l.zip");
  });

  test("a missing model names the folders it looked in and how to get it; a wrong task is refused", () => {
    expect(() => resolveFaceDetector("scrfd-10g", [modelsDir])).toThrow(/det_10g\.onnx.*scrfd-10g.*buffalo_l\.zip/);
    expect(() => resolveFaceDetector("test-arcface", [modelsDir])).toThrow(/face-embed model, not a face-detect model/);
    expect(() => resolveFaceEmbedder("nope", [modelsDir])).toThrow(/unknown model "nope"/);
  });
});

// Pretrained weights, when ../shared/models has them (empty on these machines today).
const realDetector = join(SHARED_MODELS, "scrfd-10g", "det_10g.onnx");
const realEmbedder = join(SHARED_MODELS, "arcface-r50", "w600k_r50.onnx");
const haveReal = existsSync(realDetector) && existsSync(realEmbedder);
const skipReason = haveReal ? "" : ` [SKIPPED: no pretrained weights; needs ${realDetector} and ${realEmbedder}]`;

describe("pretrained SCRFD-10GF + ArcFace R50", () => {
  test.skipIf(!haveReal)(`finds the faces in messi5.jpg and astronaut.png, and a face matches itself mirrored better than another${skipReason}`, async () => {
    const real = await createFacesStage({ modelDirs: [SHARED_MODELS], threads: 2 });
    try {
      const decode = (name: string) => decodeImage(join(PHOTOS, name), { targetShortSide: real.minShortSide });
      const astronaut = await real.analyze(await decode("astronaut.png"));
      const messi = await real.analyze(await decode("messi5.jpg"));
      expect(astronaut.length).toBe(1);
      expect(messi.length).toBeGreaterThanOrEqual(1);
      const sharp = loadSharp();
      const flopped = await decodeImage(new Uint8Array(await sharp(join(PHOTOS, "astronaut.png")).flop().png().toBuffer()));
      const mirrored = await real.analyze(flopped);
      expect(mirrored.length).toBe(1);
      const self = cosine(astronaut[0]!.embedding, mirrored[0]!.embedding);
      const other = Math.max(...messi.map((f) => cosine(astronaut[0]!.embedding, f.embedding)));
      expect(self).toBeGreaterThan(0.5);
      expect(self).toBeGreaterThan(other + 0.2);
    } finally {
      await real.close();
    }
  });
});
