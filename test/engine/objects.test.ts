// Object labels: letterbox geometry and pixels, YOLO decoding and per-class NMS, and the stage end to end on real
// photos with planted coloured rectangles, through the generated test-yolo model, onnxruntime and DuckDB.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ANCHORS, buildTestYolo, CLASSES, generateTestYolo } from "../../models/test/generate-yolo.ts";
import { generateYoloCost, yoloCostManifest, yoloCostMacs } from "../../models/test/generate-yolo-cost.ts";
import { registerStageManifests } from "../../src/engine/analysis/stage-model.ts";
import type { AnalysisStage } from "../../src/engine/analysis/stage.ts";
import { decodeImage } from "../../src/engine/decode.ts";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { loadDuckDB, loadOrt, loadSharp } from "../../src/engine/native.ts";
import { COCO_LABELS, VEHICLE_LABELS } from "../../src/engine/objects/coco-labels.ts";
import { letterbox, letterboxGeometry, resizeLinearRgb, unletterboxBox } from "../../src/engine/objects/letterbox.ts";
import { createObjectsStage, type Detection } from "../../src/engine/objects/objects-stage.ts";
import { objectFilterSql, UnknownLabelError } from "../../src/engine/objects/objects-table.ts";
import { decodeYolo, nmsPerClass, type RawDetection } from "../../src/engine/objects/yolo-decode.ts";
import { YoloDetector } from "../../src/engine/objects/yolo-detector.ts";
import { resolveObjectModel } from "../../src/engine/objects/yolo-model.ts";

const REPO = join(import.meta.dir, "..", "..");
const PHOTOS = join(REPO, "..", "shared", "photos");
const SHARED_MODELS = join(REPO, "..", "shared", "models");

let modelsDir: string;
let stage: AnalysisStage<Detection[]>;

beforeAll(async () => {
  // The test model is generated into a temp models dir, so this file does not depend on `npm test`'s generate step.
  modelsDir = mkdtempSync(join(tmpdir(), "imgd-objects-"));
  generateTestYolo(join(modelsDir, "test-yolo"));
  stage = await createObjectsStage({ modelDirs: [modelsDir], model: "test-yolo", threads: 1 });
});

afterAll(async () => {
  await stage?.close();
  rmSync(modelsDir, { recursive: true, force: true });
});

describe("letterbox geometry", () => {
  // Reference values worked out by hand from ultralytics' LetterBox: r = min(640/h, 640/w), new = round(w r),
  // round(h r) with Python's round, padding split with round(d - 0.1) / round(d + 0.1).
  const cases: [string, number, number, { nw: number; nh: number; top: number; bottom: number; left: number; right: number }][] = [
    ["landscape 16:9", 1280, 720, { nw: 640, nh: 360, top: 140, bottom: 140, left: 0, right: 0 }],
    ["portrait 9:16", 720, 1280, { nw: 360, nh: 640, top: 0, bottom: 0, left: 140, right: 140 }],
    ["4:3 camera", 4000, 3000, { nw: 640, nh: 480, top: 80, bottom: 80, left: 0, right: 0 }],
    ["square, already 640", 640, 640, { nw: 640, nh: 640, top: 0, bottom: 0, left: 0, right: 0 }],
    ["tiny 3x2, enlarged; odd padding goes to the bottom", 3, 2, { nw: 640, nh: 427, top: 106, bottom: 107, left: 0, right: 0 }],
    ["odd padding of one pixel", 1001, 1000, { nw: 640, nh: 639, top: 0, bottom: 1, left: 0, right: 0 }],
    ["a half rounds to even (2.5 -> 2)", 1280, 5, { nw: 640, nh: 2, top: 319, bottom: 319, left: 0, right: 0 }],
    ["huge panorama 20000x100", 20000, 100, { nw: 640, nh: 3, top: 318, bottom: 319, left: 0, right: 0 }],
    ["huge portrait 40000x100000", 40000, 100000, { nw: 256, nh: 640, top: 0, bottom: 0, left: 192, right: 192 }],
  ];
  for (const [name, w, h, want] of cases) {
    test(`${name}: ${w}x${h} -> ${want.nw}x${want.nh} at (${want.left}, ${want.top})`, () => {
      const g = letterboxGeometry(w, h, 640);
      expect({ nw: g.newWidth, nh: g.newHeight, top: g.top, bottom: g.bottom, left: g.left, right: g.right }).toEqual(want);
      expect(g.left + g.newWidth + g.right).toBe(640);
      expect(g.top + g.newHeight + g.bottom).toBe(640);
    });
  }

  test("a box maps back to the source through the padding and the ratio, clipped to the image", () => {
    const g = letterboxGeometry(1280, 720, 640);
    // Forward by hand: x * 0.5, y * 0.5 + 140.
    expect(unletterboxBox([50, 240, 150, 340], g)).toEqual([100, 200, 300, 400]);
    expect(unletterboxBox([-10, 100, 700, 600], g)).toEqual([0, 0, 1280, 720]);
  });

  test("an image without pixels is refused", () => {
    expect(() => letterboxGeometry(0, 10, 640)).toThrow(/no pixels/);
  });
});

function randomRgb(w: number, h: number, seed: number): Uint8Array {
  const rand = mulberry32(seed);
  return Uint8Array.from({ length: w * h * 3 }, () => Math.floor(rand() * 256));
}

/** An independent float bilinear resize with OpenCV's half-pixel centres and edge clamping, no antialiasing. */
function referenceBilinear(src: Uint8Array, inW: number, inH: number, outW: number, outH: number): Float64Array {
  const out = new Float64Array(outW * outH * 3);
  const at = (x: number, y: number, c: number) => src[(y * inW + x) * 3 + c]!;
  const coord = (d: number, inSize: number, outSize: number) => {
    const f = (d + 0.5) * (inSize / outSize) - 0.5;
    if (f <= 0) return [0, 0, 0] as const;
    if (f >= inSize - 1) return [inSize - 1, inSize - 1, 0] as const;
    const i = Math.floor(f);
    return [i, i + 1, f - i] as const;
  };
  for (let y = 0; y < outH; y++) {
    const [y0, y1, fy] = coord(y, inH, outH);
    for (let x = 0; x < outW; x++) {
      const [x0, x1, fx] = coord(x, inW, outW);
      for (let c = 0; c < 3; c++) {
        const top = at(x0, y0, c) * (1 - fx) + at(x1, y0, c) * fx;
        const bottom = at(x0, y1, c) * (1 - fx) + at(x1, y1, c) * fx;
        out[(y * outW + x) * 3 + c] = top * (1 - fy) + bottom * fy;
      }
    }
  }
  return out;
}

describe("letterbox pixels", () => {
  for (const [inW, inH, outW, outH] of [
    [300, 200, 640, 427],
    [1500, 1000, 640, 427],
    [97, 355, 175, 640],
  ] as const) {
    test(`the ${inW}x${inH} -> ${outW}x${outH} resize is cv2 INTER_LINEAR to within one level`, () => {
      const src = randomRgb(inW, inH, inW * 7 + inH);
      const got = resizeLinearRgb(src, inW, inH, outW, outH);
      const want = referenceBilinear(src, inW, inH, outW, outH);
      let worst = 0;
      let sum = 0;
      for (let i = 0; i < want.length; i++) {
        const d = Math.abs(got[i]! - want[i]!);
        worst = Math.max(worst, d);
        sum += d;
      }
      // Fixed-point weights (11 bits) and OpenCV's two-step rounding stay within one 8-bit level of exact.
      expect(worst).toBeLessThanOrEqual(1);
      expect(sum / want.length).toBeLessThan(0.5);
    });
  }

  test("an exact 2x shrink averages each 2x2 block, as OpenCV's INTER_AREA shortcut does", () => {
    const src = randomRgb(8, 6, 3);
    const got = resizeLinearRgb(src, 8, 6, 4, 3);
    for (let y = 0; y < 3; y++) {
      for (let x = 0; x < 4; x++) {
        for (let c = 0; c < 3; c++) {
          const p = (yy: number, xx: number) => src[(yy * 8 + xx) * 3 + c]!;
          const sum = p(2 * y, 2 * x) + p(2 * y, 2 * x + 1) + p(2 * y + 1, 2 * x) + p(2 * y + 1, 2 * x + 1);
          expect(got[(y * 4 + x) * 3 + c]).toBe((sum + 2) >> 2);
        }
      }
    }
  });

  test("the tensor is RGB planes / 255 with the image at its offset and 114 grey around it", () => {
    // 64x36 solid colour -> 640x360 at top 140.
    const w = 64;
    const h = 36;
    const data = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) data.set([200, 100, 50], i * 3);
    const { tensor, geometry } = letterbox({ data, width: w, height: h }, 640);
    expect(geometry.top).toBe(140);
    const plane = 640 * 640;
    const px = (c: number, x: number, y: number) => tensor[c * plane + y * 640 + x]!;
    expect(px(0, 0, 139)).toBeCloseTo(114 / 255, 6);
    expect(px(2, 639, 500)).toBeCloseTo(114 / 255, 6);
    expect([px(0, 0, 140), px(1, 320, 300), px(2, 639, 499)].map((v) => Math.round(v * 255))).toEqual([200, 100, 50]);
    expect(px(0, 10, 500)).toBeCloseTo(114 / 255, 6);
  });
});

/** A [1, 84, n] YOLOv8 output from a list of anchors. */
function v8Output(anchors: { box: [number, number, number, number]; scores: Record<number, number> }[]): { data: Float32Array; dims: number[] } {
  const n = anchors.length;
  const data = new Float32Array((4 + CLASSES) * n);
  anchors.forEach((a, i) => {
    a.box.forEach((v, k) => (data[k * n + i] = v));
    for (const [cls, s] of Object.entries(a.scores)) data[(4 + Number(cls)) * n + i] = s;
  });
  return { data, dims: [1, 4 + CLASSES, n] };
}

const CAR = COCO_LABELS.indexOf("car");
const PERSON = COCO_LABELS.indexOf("person");
const DOG = COCO_LABELS.indexOf("dog");
const opts = { classes: CLASSES, conf: 0.25, iou: 0.45, maxDet: 300 };

describe("decoding YOLO output", () => {
  const anchors = [
    { box: [100, 100, 80, 40] as [number, number, number, number], scores: { [CAR]: 0.9 } },
    // Same class, nearly the same place: a duplicate.
    { box: [104, 102, 80, 40] as [number, number, number, number], scores: { [CAR]: 0.8 } },
    // Another class in the same place: a person on the car's box stays.
    { box: [102, 100, 80, 40] as [number, number, number, number], scores: { [PERSON]: 0.85, [CAR]: 0.1 } },
    { box: [500, 400, 60, 60] as [number, number, number, number], scores: { [CAR]: 0.7 } },
    { box: [300, 300, 50, 50] as [number, number, number, number], scores: { [DOG]: 0.2 } },
    // Exactly at the threshold: ultralytics keeps only scores above it.
    { box: [50, 500, 20, 20] as [number, number, number, number], scores: { [CAR]: 0.25 } },
  ];

  test("threshold, then NMS per class: duplicates go, overlapping boxes of other classes stay", () => {
    const { data, dims } = v8Output(anchors);
    const found = decodeYolo(data, dims, opts);
    expect(found.map((d) => [COCO_LABELS[d.classId], +d.score.toFixed(2)])).toEqual([
      ["car", 0.9],
      ["person", 0.85],
      ["car", 0.7],
    ]);
    expect(found[0]!.box).toEqual([60, 80, 140, 120]);
  });

  test("a looser IoU keeps the same-class neighbour, and maxDet caps the count best first", () => {
    const { data, dims } = v8Output(anchors);
    expect(decodeYolo(data, dims, { ...opts, iou: 0.95 }).map((d) => +d.score.toFixed(2))).toEqual([0.9, 0.85, 0.8, 0.7]);
    expect(decodeYolo(data, dims, { ...opts, maxDet: 2 }).map((d) => +d.score.toFixed(2))).toEqual([0.9, 0.85]);
  });

  test("the YOLOv5 layout multiplies class scores by objectness", () => {
    const n = 3;
    const stride = 5 + CLASSES;
    const data = new Float32Array(n * stride);
    const row = (i: number, box: number[], obj: number, cls: number, s: number) => {
      data.set(box, i * stride);
      data[i * stride + 4] = obj;
      data[i * stride + 5 + cls] = s;
    };
    row(0, [100, 100, 20, 20], 0.5, CAR, 0.8); // 0.4: kept
    row(1, [300, 300, 20, 20], 0.9, PERSON, 0.2); // 0.18: dropped
    row(2, [500, 500, 20, 20], 0.2, DOG, 1.0); // objectness below threshold: dropped
    const found = decodeYolo(data, [1, n, stride], opts);
    expect(found.map((d) => [COCO_LABELS[d.classId], +d.score.toFixed(2)])).toEqual([["car", 0.4]]);
  });

  test("an output of another shape is refused with the shapes it accepts", () => {
    expect(() => decodeYolo(new Float32Array(10 * 5), [1, 10, 5], opts)).toThrow(/expected \[1, 84, N\] \(YOLOv8\/11\) or \[1, N, 85\]/);
  });

  test("NMS alone: boxes that do not overlap are all kept", () => {
    const d = (x: number, score: number): RawDetection => ({ classId: CAR, score, box: [x, 0, x + 10, 10] });
    expect(nmsPerClass([d(0, 0.9), d(20, 0.8), d(40, 0.7)], 0.45, 10)).toHaveLength(3);
  });
});

describe("the generated test-yolo model", () => {
  test("has YOLOv8n's signature and is byte-for-byte reproducible", async () => {
    expect(Buffer.compare(Buffer.from(buildTestYolo()), Buffer.from(buildTestYolo()))).toBe(0);
    const ort = loadOrt();
    const session = await ort.InferenceSession.create(join(modelsDir, "test-yolo", "model.onnx"));
    try {
      expect(session.inputNames).toEqual(["images"]);
      expect(session.outputNames).toEqual(["output0"]);
      const out = await session.run({ images: new ort.Tensor("float32", new Float32Array(3 * 640 * 640).fill(114 / 255), [1, 3, 640, 640]) });
      expect(out.output0!.dims).toEqual([1, 84, ANCHORS]);
      expect(ANCHORS).toBe(8400);
    } finally {
      await session.release();
    }
  });
});

describe("the generated yolo-cost benchmark model", () => {
  test("does YOLOv8n's arithmetic (8.7 GFLOPs, about 4.35 GMACs) and ends in its 1x84x8400 head", async () => {
    // ultralytics reports YOLOv8n at 8.7 GFLOPs for 640x640, i.e. about 4.35 G multiply-accumulates.
    expect(Math.abs(yoloCostMacs() / 4.35e9 - 1)).toBeLessThan(0.05);
    generateYoloCost(modelsDir);
    registerStageManifests([yoloCostManifest()]);
    const detector = await YoloDetector.open(resolveObjectModel("yolo-cost", [modelsDir]), { threads: 1 });
    try {
      const raw = await detector.infer(new Float32Array(3 * 640 * 640).fill(0.5));
      expect(raw.dims).toEqual([1, 84, 8400]);
      expect(raw.data.every(Number.isFinite)).toBe(true);
      // DFL boxes come out positive-sized; random class weights score near zero, like a trained head on background.
      expect(raw.data[2 * 8400]).toBeGreaterThan(0);
      expect(raw.data.subarray(4 * 8400).reduce((m, v) => Math.max(m, v), 0)).toBeLessThan(0.25);
    } finally {
      await detector.close();
    }
  });
});

interface Planted {
  colour: [number, number, number];
  /** Fractions of the photo's width and height: x, y, w, h. */
  at: [number, number, number, number];
}

const RED_CAR: Planted = { colour: [220, 20, 20], at: [0.1, 0.55, 0.3, 0.2] };
const BLUE_PERSON: Planted = { colour: [20, 40, 230], at: [0.6, 0.1, 0.12, 0.35] };

/** A real photo, optionally enlarged, with solid rectangles drawn on it; returns the file and the expected boxes. */
async function plantedPhoto(name: string, planted: Planted[], opts: { scale?: number; format?: "png" | "jpeg" } = {}) {
  const sharp = loadSharp();
  const meta = await sharp(join(PHOTOS, name)).metadata();
  const w = Math.round(meta.width! * (opts.scale ?? 1));
  const h = Math.round(meta.height! * (opts.scale ?? 1));
  const boxes = planted.map((p) => {
    const [fx, fy, fw, fh] = p.at;
    return [Math.round(w * fx), Math.round(h * fy), Math.round(w * (fx + fw)), Math.round(h * (fy + fh))] as const;
  });
  const rects = planted
    .map((p, i) => {
      const [x0, y0, x1, y1] = boxes[i]!;
      return `<rect x="${x0}" y="${y0}" width="${x1 - x0}" height="${y1 - y0}" fill="rgb(${p.colour.join(",")})"/>`;
    })
    .join("");
  const svg = Buffer.from(`<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}">${rects}</svg>`);
  const img = sharp(join(PHOTOS, name)).removeAlpha().resize(w, h).composite([{ input: svg }]);
  const bytes = opts.format === "jpeg" ? await img.jpeg({ quality: 95 }).toBuffer() : await img.png().toBuffer();
  return { bytes: new Uint8Array(bytes), boxes, width: w, height: h };
}

function expectBox(got: readonly number[], want: readonly number[], tolerance: number): void {
  got.forEach((v, i) => expect(Math.abs(v - want[i]!)).toBeLessThanOrEqual(tolerance));
}

describe("the objects stage on real photos", () => {
  test("declares what letterboxing to 640 needs and a version that names the model and thresholds", () => {
    expect(stage.name).toBe("objects");
    expect(stage.minShortSide).toBe(640);
    expect(stage.version).toMatch(/^\d+ test-yolo@[0-9a-f]{16} conf=0\.25 iou=0\.45$/);
  });

  for (const name of ["home.jpg", "fruits.jpg", "building.jpg"]) {
    test(`${name} with a red and a blue rectangle: a car and a person, boxed where they were drawn`, async () => {
      const photo = await plantedPhoto(name, [RED_CAR, BLUE_PERSON]);
      const found = await stage.analyze(await decodeImage(photo.bytes, { targetShortSide: 640 }));
      expect(found.map((d) => d.label).sort()).toEqual(["car", "person"]);
      // One input pixel of the 640 square is up to 1.7 source pixels here; the colour edges blend over one more.
      expectBox(found.find((d) => d.label === "car")!.box, photo.boxes[0]!, 4);
      expectBox(found.find((d) => d.label === "person")!.box, photo.boxes[1]!, 4);
      expect(stage.counts(found)).toEqual({ objects: 2, vehicles: 1, people: 1 });
    });
  }

  test("the same photos without rectangles have no objects", async () => {
    for (const name of ["home.jpg", "fruits.jpg", "building.jpg"]) {
      expect(await stage.analyze(await decodeImage(join(PHOTOS, name), { targetShortSide: 640 }))).toEqual([]);
    }
  });

  test("a camera-sized JPEG decoded shrunk on load still gets boxes in its own source pixels", async () => {
    const photo = await plantedPhoto("home.jpg", [RED_CAR], { scale: 5, format: "jpeg" });
    const image = await decodeImage(photo.bytes, { targetShortSide: 640 });
    // The decode really is smaller than the file, so the mapping back has work to do.
    expect(image.sourceWidth).toBe(photo.width);
    expect(image.width).toBeLessThan(photo.width);
    const found = await stage.analyze(image);
    expect(found.map((d) => d.label)).toEqual(["car"]);
    expectBox(found[0]!.box, photo.boxes[0]!, 0.006 * photo.width);
  });
});

describe("stored objects and the --has filter", () => {
  async function catalogWith(results: { imageId: number; result: Detection[] }[]) {
    const duck = loadDuckDB();
    const db = await duck.DuckDBInstance.create(":memory:");
    const conn = await db.connect();
    await conn.run("CREATE TABLE images (id BIGINT PRIMARY KEY, path VARCHAR)");
    await conn.run("INSERT INTO images VALUES (1, 'street.png'), (2, 'portrait.png'), (3, 'empty.png')");
    for (const ddl of stage.ddl) await conn.run(ddl);
    await conn.run("BEGIN TRANSACTION");
    await stage.write(conn, results);
    await conn.run("COMMIT");
    const ids = async (labels: string[]) => {
      const c = objectFilterSql(labels);
      const rows = (await conn.runAndReadAll(`SELECT id FROM images WHERE ${c.sql} ORDER BY id`, c.params)).getRows();
      return rows.map((r) => Number(r[0]));
    };
    return { conn, ids, close: () => (conn.closeSync(), db.closeSync()) };
  }

  test("write() stores each detection as a row in source pixels, and --has finds the image", async () => {
    const street = await plantedPhoto("home.jpg", [RED_CAR, BLUE_PERSON]);
    const portrait = await plantedPhoto("fruits.jpg", [BLUE_PERSON]);
    const results = [
      { imageId: 1, result: await stage.analyze(await decodeImage(street.bytes)) },
      { imageId: 2, result: await stage.analyze(await decodeImage(portrait.bytes)) },
      { imageId: 3, result: [] },
    ];
    const db = await catalogWith(results);
    try {
      const rows = (await db.conn.runAndReadAll("SELECT image_id, label, class_id, score, x0, y0, x1, y1 FROM objects ORDER BY image_id, label")).getRows();
      expect(rows.map((r) => [Number(r[0]), r[1], r[2]])).toEqual([
        [1, "car", CAR],
        [1, "person", PERSON],
        [2, "person", PERSON],
      ]);
      expectBox(rows[0]!.slice(4).map(Number), street.boxes[0]!, 4);
      expect(Number(rows[0]![3])).toBeGreaterThan(0.9);

      expect(await db.ids(["car"])).toEqual([1]);
      expect(await db.ids(["person"])).toEqual([1, 2]);
      expect(await db.ids(["car", "person"])).toEqual([1]);
      expect(await db.ids(["Person", "vehicle"])).toEqual([1]);
      expect(await db.ids(["dog"])).toEqual([]);
    } finally {
      db.close();
    }
  });

  test("an unknown label is refused before any SQL, naming the close ones", () => {
    expect(() => objectFilterSql(["cra"])).toThrow(UnknownLabelError);
    expect(() => objectFilterSql(["cra"])).toThrow(/did you mean "car"/);
    expect(() => objectFilterSql(["spaceship"])).toThrow(/unknown object label "spaceship"; known labels: person, bicycle/);
    expect(objectFilterSql(["motorbike"]).params).toEqual(["motorcycle"]);
    expect(() => objectFilterSql(["car') OR 1=1 --"])).toThrow(UnknownLabelError);
    expect(objectFilterSql(["traffic_light"]).params).toEqual(["traffic light"]);
    expect(objectFilterSql(["vehicles"]).params).toEqual([...VEHICLE_LABELS]);
  });
});

describe("opening the stage", () => {
  test("a missing model says where it looked and how to get it", async () => {
    await expect(createObjectsStage({ modelDirs: [modelsDir], model: "yolov8n" })).rejects.toThrow(
      /model "yolov8n" is missing yolov8n\.onnx; looked in .*yolov8n\. Run: pip install ultralytics/,
    );
  });

  test("thresholds outside 0..1 are refused, and other thresholds give another version", async () => {
    await expect(createObjectsStage({ modelDirs: [modelsDir], model: "test-yolo", conf: 1.5 })).rejects.toThrow(/conf must be between 0 and 1/);
    const strict = await createObjectsStage({ modelDirs: [modelsDir], model: "test-yolo", conf: 0.5 });
    try {
      expect(strict.version).not.toBe(stage.version);
      expect(strict.version).toContain("conf=0.5");
    } finally {
      await strict.close();
    }
  });
});

// Pretrained weights are not on this machine; when someone puts an export in ../shared/models this runs.
const realModel = ["yolov8n", "yolo11n"].find((n) => existsSync(join(SHARED_MODELS, n, `${n}.onnx`)));
describe.skipIf(!realModel)(`real weights (${realModel ?? "skipped: no yolov8n/yolo11n export in ../shared/models"})`, () => {
  test("finds the motorcycle and the footballer", async () => {
    const real = await createObjectsStage({ modelDirs: [SHARED_MODELS], model: realModel!, threads: 2 });
    try {
      const moto = await real.analyze(await decodeImage(join(PHOTOS, "motorcycle_left.png"), { targetShortSide: 640 }));
      expect(moto.map((d) => d.label)).toContain("motorcycle");
      const messi = await real.analyze(await decodeImage(join(PHOTOS, "messi5.jpg"), { targetShortSide: 640 }));
      expect(messi.map((d) => d.label)).toContain("person");
    } finally {
      await real.close();
    }
  });
});
