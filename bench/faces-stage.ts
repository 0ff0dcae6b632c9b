// What `imgd index --faces` costs per image: detection (resize + normalise, inference, decode + NMS), alignment
// per face, embedding per face, and the whole stage's analyze(), on real photos. Two model pairs: the generated test
// pair (test-scrfd + test-arcface: tiny nets, so this is our own code's cost) and cost stand-ins with the compute of
// SCRFD-10GF at 640x640 and ArcFace IResNet-50 (scrfd-cost + arcface-cost: random weights, so what real weights
// would cost on this machine; their detections are noise, so alignment and embedding run on test-scrfd's faces).
//
//   bun bench/faces-stage.ts [--rounds 3] [--threads 2] [--photos messi5.jpg,astronaut.png] [--cost 1] [--batch 8]
//   full size: bun bench/faces-stage.ts --rounds 20   (messi5.jpg and astronaut.png are the photos in ../shared/photos with a face)
import { join } from "node:path";
import { faceCostMacs, faceCostManifests, generateFaceCost } from "../models/test/generate-face-cost.ts";
import { generateTestFaces } from "../models/test/generate-faces.ts";
import { registerStageManifests } from "../src/engine/analysis/stage-model.ts";
import { decodeImage } from "../src/engine/decode.ts";
import { ALIGNED_SIZE, alignFace, laplacianVariance } from "../src/engine/faces/face-align.ts";
import { FaceDetector } from "../src/engine/faces/face-detector.ts";
import { FaceEmbedder } from "../src/engine/faces/face-embed.ts";
import { resolveFaceDetector, resolveFaceEmbedder } from "../src/engine/faces/face-models.ts";
import { createFacesStage } from "../src/engine/faces/faces-stage.ts";
import type { DecodedImage } from "../src/engine/types.ts";
import { BENCH_MODELS, flag, loadNote, percentile, PHOTOS } from "./fixtures.ts";

const rounds = Number(flag("--rounds", "3"));
const threads = Number(flag("--threads", "2"));
const photos = flag("--photos", "messi5.jpg,astronaut.png").split(",");
const withCost = flag("--cost", "1") !== "0";
const batch = Number(flag("--batch", "8"));

generateTestFaces(BENCH_MODELS);
if (withCost) {
  generateFaceCost(BENCH_MODELS);
  registerStageManifests(faceCostManifests());
}
const dirs = [BENCH_MODELS];
console.log(`faces bench: ${photos.join(", ")} from ${PHOTOS}, ${rounds} rounds, ${threads} threads; ${loadNote()}`);

const line = (label: string, ms: number[], per = "") => {
  const s = [...ms].sort((a, b) => a - b);
  const mean = ms.reduce((a, b) => a + b, 0) / ms.length;
  console.log(`  ${label.padEnd(44)} mean ${mean.toFixed(2).padStart(9)} ms  p50 ${percentile(s, 50).toFixed(2).padStart(9)} ms${per}`);
  return mean;
};
const time = async <T>(samples: number[], work: () => Promise<T> | T): Promise<T> => {
  const t0 = performance.now();
  const out = await work();
  samples.push(performance.now() - t0);
  return out;
};

const images: { name: string; image: DecodedImage }[] = [];
for (const name of photos) {
  // The pipeline decodes once at max(CLIP's 224, every stage's minShortSide) = 640 with --faces.
  images.push({ name, image: await decodeImage(join(PHOTOS, name), { targetShortSide: 640 }) });
}

async function benchDetector(modelName: string): Promise<Map<string, Awaited<ReturnType<FaceDetector["detect"]>>>> {
  const detector = await FaceDetector.open(resolveFaceDetector(modelName, dirs), { threads });
  const found = new Map<string, Awaited<ReturnType<FaceDetector["detect"]>>>();
  console.log(`detector ${modelName}`);
  for (const { name, image } of images) {
    const prep: number[] = [];
    const infer: number[] = [];
    const decode: number[] = [];
    // One untimed pass first: JIT and onnxruntime's first-run allocations are not the steady state.
    await detector.detect(image);
    for (let r = 0; r < rounds; r++) {
      const { tensor, geometry } = await time(prep, () => detector.prepare(image));
      const raw = await time(infer, () => detector.infer(tensor));
      found.set(name, await time(decode, () => detector.decode(raw, geometry)));
    }
    console.log(` ${name} (${image.width}x${image.height} decoded, ${found.get(name)!.length} faces)`);
    const total = line("resize + normalise", prep) + line("inference", infer) + line("decode + NMS", decode);
    console.log(`  ${"detect total".padEnd(44)} mean ${total.toFixed(2).padStart(9)} ms`);
  }
  await detector.close();
  return found;
}

async function benchEmbedder(modelName: string, crops: Uint8Array[]): Promise<number> {
  const embedder = await FaceEmbedder.open(resolveFaceEmbedder(modelName, dirs), { threads });
  const one: number[] = [];
  const many: number[] = [];
  const batchCrops = Array.from({ length: batch }, (_, i) => crops[i % crops.length]!);
  await embedder.embed(batchCrops);
  for (let r = 0; r < rounds; r++) {
    await time(one, () => embedder.embed(crops.slice(0, 1)));
    await time(many, () => embedder.embed(batchCrops));
  }
  console.log(`embedder ${modelName} (max batch ${embedder.maxBatch})`);
  line("1 face", one, " per face");
  const perFace = line(`batch of ${batch} faces`, many) / batch;
  console.log(`  ${"  = per face".padEnd(44)} mean ${perFace.toFixed(2).padStart(9)} ms`);
  await embedder.close();
  return perFace;
}

const testFaces = await benchDetector("test-scrfd");
if (withCost) await benchDetector("scrfd-cost");

// Alignment (similarity fit + 112x112 bilinear warp) and the blur score, per face found by test-scrfd.
const crops: Uint8Array[] = [];
const align: number[] = [];
const blur: number[] = [];
for (let r = -1; r < rounds; r++) {
  for (const { name, image } of images) {
    for (const face of testFaces.get(name) ?? []) {
      // Round -1 warms up and is not recorded.
      const aligned = await time(r < 0 ? [] : align, () => alignFace(image, face.landmarks));
      if (!aligned) continue;
      await time(r < 0 ? [] : blur, () => laplacianVariance(aligned.pixels, ALIGNED_SIZE, ALIGNED_SIZE));
      if (r === 0) crops.push(aligned.pixels);
    }
  }
}
if (crops.length === 0) throw new Error("test-scrfd found no face in the photos; nothing to align or embed");
console.log("alignment");
line("similarity + warp to 112x112", align, " per face");
line("variance of Laplacian", blur, " per face");

await benchEmbedder("test-arcface", crops);
if (withCost) await benchEmbedder("arcface-cost", crops);

// The whole stage as the pipeline calls it (detect, align, embed; no DuckDB write).
for (const [detector, embedder] of withCost ? [["test-scrfd", "test-arcface"], ["scrfd-cost", "arcface-cost"]] : [["test-scrfd", "test-arcface"]]) {
  const stage = await createFacesStage({ modelDirs: dirs, detector, embedder, threads });
  const ms: number[] = [];
  let faces = 0;
  for (const { image } of images) await stage.analyze(image);
  for (let r = 0; r < rounds; r++) for (const { image } of images) faces += (await time(ms, () => stage.analyze(image))).length;
  console.log(`stage analyze() ${detector} + ${embedder}`);
  line(`per image (${(faces / rounds / images.length).toFixed(1)} faces per image)`, ms);
  await stage.close();
}
if (withCost) {
  const macs = faceCostMacs();
  console.log(`cost stand-ins: ${(macs.detector / 1e9).toFixed(2)} GMACs per image (detector), ${(macs.embedder / 1e9).toFixed(2)} GMACs per face (embedder)`);
}
