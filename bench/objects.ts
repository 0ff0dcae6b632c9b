// What `imgd index --objects` costs per image: letterbox, detector inference (yolo-cost: YOLOv8n's compute with
// random weights), decode + NMS, and the whole stage (analyze + write to DuckDB), next to the CLIP image tower
// (vit-cost: ViT-B/32's compute) on the same threads, plus the extra decode work of keeping 640 px instead of 224.
//
//   bun bench/objects.ts [--images 6] [--rounds 2] [--threads 2] [--size 2000x1500]
//   full size: bun bench/objects.ts --images 19 --rounds 5 --size 4000x3000
// Last, letterbox correctness: boxes of planted rectangles (test-yolo) against where they were drawn, over landscape,
// portrait, tiny and enlarged versions of the photos, in source pixels.
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { generateTestYolo } from "../models/test/generate-yolo.ts";
import { generateYoloCost, NAME as YOLO_COST, yoloCostManifest, yoloCostMacs } from "../models/test/generate-yolo-cost.ts";
import { registerStageManifests } from "../src/engine/analysis/stage-model.ts";
import { decodeImage } from "../src/engine/decode.ts";
import { ImageEmbedder } from "../src/engine/embed.ts";
import { loadDuckDB, loadSharp } from "../src/engine/native.ts";
import { createObjectsStage } from "../src/engine/objects/objects-stage.ts";
import { YoloDetector } from "../src/engine/objects/yolo-detector.ts";
import { decodeYolo } from "../src/engine/objects/yolo-decode.ts";
import { resolveObjectModel } from "../src/engine/objects/yolo-model.ts";
import { preprocess } from "../src/engine/preprocess.ts";
import type { DecodedImage } from "../src/engine/types.ts";
import { BENCH_MODELS, flag, loadNote, percentile, PHOTOS, prng, vitCostModel } from "./fixtures.ts";

const imageCount = Number(flag("--images", "6"));
const rounds = Number(flag("--rounds", "2"));
const threads = Number(flag("--threads", "2"));
const [width, height] = flag("--size", "2000x1500").split("x").map(Number) as [number, number];

const sharp = loadSharp();
const names = readdirSync(PHOTOS).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort().slice(0, imageCount);
// Camera-like JPEGs made in memory by upscaling the bundled photos (they are at most 1 MP).
const jpegs = await Promise.all(
  names.map(async (n) => new Uint8Array(await sharp(join(PHOTOS, n)).resize(width, height, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer())),
);
console.log(`objects bench: ${jpegs.length} JPEGs ${width}x${height} from ${PHOTOS}, ${rounds} rounds, ${threads} threads; ${loadNote()}`);

const summary = (ms: number[]) => {
  const s = [...ms].sort((a, b) => a - b);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  return { mean, p50: percentile(s, 50), line: `mean ${mean.toFixed(2).padStart(8)} ms  p50 ${percentile(s, 50).toFixed(2).padStart(8)} ms` };
};
const time = async <T>(samples: number[], work: () => Promise<T> | T): Promise<T> => {
  const t0 = performance.now();
  const out = await work();
  samples.push(performance.now() - t0);
  return out;
};

// Decode cost: the pipeline decodes once at max(CLIP's 224, every stage's minShortSide); --objects raises it to 640.
const decodeAt = { 224: [] as number[], 640: [] as number[] };
const decoded: DecodedImage[] = [];
for (let r = 0; r < rounds; r++) {
  for (const bytes of jpegs) {
    await time(decodeAt[224], () => decodeImage(bytes, { targetShortSide: 224 }));
    const img = await time(decodeAt[640], () => decodeImage(bytes, { targetShortSide: 640 }));
    if (r === 0) decoded.push(img);
  }
}

generateYoloCost(BENCH_MODELS);
registerStageManifests([yoloCostManifest()]);
const detector = await YoloDetector.open(resolveObjectModel(YOLO_COST, [BENCH_MODELS]), { threads });
const steps = { letterbox: [] as number[], infer: [] as number[], decode: [] as number[] };
// Two untimed runs: onnxruntime's first runs allocate and pick kernels.
for (const img of decoded.slice(0, 2)) await detector.detect(img);
for (let r = 0; r < rounds; r++) {
  for (const img of decoded) {
    const { tensor, geometry } = await time(steps.letterbox, () => detector.prepare(img));
    const raw = await time(steps.infer, () => detector.infer(tensor));
    await time(steps.decode, () => detector.decode(raw, geometry, img));
  }
}
await detector.close();

// Random weights leave every score near zero, so decode above is the scan alone; a trained detector on a busy photo
// passes a few hundred anchors to NMS. This output has 400 candidates in 40 clusters over 8 classes.
const rand = prng(0x0b1ec7);
const dense = new Float32Array(84 * 8400);
for (let c = 0; c < 40; c++) {
  const [cx, cy, w, h, cls] = [rand() * 640, rand() * 640, 20 + rand() * 200, 20 + rand() * 200, Math.floor(rand() * 8)];
  for (let k = 0; k < 10; k++) {
    const a = Math.floor(rand() * 8400);
    [cx + rand() * 8, cy + rand() * 8, w * (0.9 + rand() * 0.2), h * (0.9 + rand() * 0.2)].forEach((v, i) => (dense[i * 8400 + a] = v));
    dense[(4 + cls) * 8400 + a] = 0.3 + rand() * 0.7;
  }
}
const denseMs: number[] = [];
for (let r = 0; r < 20; r++) await time(denseMs, () => decodeYolo(dense, [1, 84, 8400], { classes: 80, conf: 0.25, iou: 0.45, maxDet: 300, maxNms: 30000 }));

// The whole stage as the pipeline runs it: analyze() per image, write() inside a transaction.
const stage = await createObjectsStage({ modelDirs: [BENCH_MODELS], model: YOLO_COST, threads });
const duck = loadDuckDB();
const db = await duck.DuckDBInstance.create(":memory:");
const conn = await db.connect();
for (const ddl of stage.ddl) await conn.run(ddl);
const stageMs: number[] = [];
await stage.analyze(decoded[0]!);
let imageId = 0;
for (let r = 0; r < rounds; r++) {
  for (const img of decoded) {
    await time(stageMs, async () => {
      const result = await stage.analyze(img);
      await conn.run("BEGIN TRANSACTION");
      await stage.write(conn, [{ imageId: ++imageId, result }]);
      await conn.run("COMMIT");
    });
  }
}
await stage.close();
conn.closeSync();
db.closeSync();

// CLIP ViT-B/32's image tower on the same threads, one image at a time, preprocess included.
const clip = await ImageEmbedder.open(await vitCostModel(), { threads });
const clipMs: number[] = [];
await clip.embed(preprocess(decoded[0]!, clip.spec), 1);
for (let r = 0; r < rounds; r++) {
  for (const img of decoded) await time(clipMs, () => clip.embed(preprocess(img, clip.spec), 1));
}
await clip.close();

const clipMean = summary(clipMs).mean;
const rows: [string, number[]][] = [
  ["decode @224 short side", decodeAt[224]],
  ["decode @640 short side", decodeAt[640]],
  ["letterbox 640", steps.letterbox],
  [`infer (${YOLO_COST}, ${(yoloCostMacs() / 1e9).toFixed(2)} GMACs)`, steps.infer],
  ["decode+NMS (scan only)", steps.decode],
  ["decode+NMS (400 candidates)", denseMs],
  ["whole stage (analyze+write)", stageMs],
  ["CLIP image (vit-cost)", clipMs],
];
for (const [label, ms] of rows) console.log(`${label.padEnd(34)} ${summary(ms).line}  n=${ms.length}`);
const extraDecode = summary(decodeAt[640]).mean - summary(decodeAt[224]).mean;
const stageMean = summary(stageMs).mean;
console.log(`--objects adds ${(stageMean + extraDecode).toFixed(1)} ms/image (stage ${stageMean.toFixed(1)} + extra decode ${extraDecode.toFixed(1)})`);
console.log(`ratio whole stage / CLIP image embed: ${(stageMean / clipMean).toFixed(2)}x`);

// Letterbox correctness: a red rectangle drawn at a known place must come back there, in source pixels, whatever
// the aspect ratio and size. test-yolo's own edges are good to about one pixel of the 640 input, so errors well
// above that would be the letterbox or the mapping back.
generateTestYolo(join(BENCH_MODELS, "test-yolo"));
const boxer = await YoloDetector.open(resolveObjectModel("test-yolo", [BENCH_MODELS]), { threads });
const errors: number[] = [];
let misses = 0;
let skipped = 0;
for (const name of names) {
  // A photo with saturated red of its own would be boxed together with the rectangle; leave it out.
  if ((await boxer.detect(await decodeImage(join(PHOTOS, name), { targetShortSide: 640 }))).length > 0) {
    skipped++;
    continue;
  }
  for (const [variant, shape] of [["as is", 1], ["portrait", 1], ["tiny", 0.25], ["enlarged", 4]] as const) {
    let img = sharp(join(PHOTOS, name)).removeAlpha();
    if (variant === "portrait") img = img.rotate(90);
    const base = await img.png().toBuffer();
    const meta = await sharp(base).metadata();
    const w = Math.max(8, Math.round(meta.width! * shape));
    const h = Math.max(8, Math.round(meta.height! * shape));
    const box = [Math.round(w * 0.2), Math.round(h * 0.3), Math.round(w * 0.55), Math.round(h * 0.7)];
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}"><rect x="${box[0]}" y="${box[1]}" width="${box[2]! - box[0]!}" height="${box[3]! - box[1]!}" fill="rgb(220,20,20)"/></svg>`;
    const bytes = await sharp(base).resize(w, h, { fit: "fill" }).composite([{ input: Buffer.from(svg) }]).png().toBuffer();
    const found = (await boxer.detect(await decodeImage(new Uint8Array(bytes), { targetShortSide: 640 }))).filter((d) => d.label === "car");
    if (found.length !== 1) {
      misses++;
      continue;
    }
    // In source pixels, relative to one pixel of the 640 input (the model's own resolution).
    const inputPixel = Math.max(w, h) / 640;
    errors.push(...found[0]!.box.map((v, i) => Math.abs(v - box[i]!) / inputPixel));
  }
}
await boxer.close();
const sortedErr = [...errors].sort((a, b) => a - b);
console.log(
  `letterbox box error over ${errors.length / 4} planted rectangles: p50 ${percentile(sortedErr, 50).toFixed(2)}, max ${sortedErr[sortedErr.length - 1]!.toFixed(2)} input pixels (source px / (long side / 640)); ${misses} not found; ${skipped} photos left out (red of their own)`,
);
