// OCR: word accuracy on photographs with planted words (test/engine/ocr-photos.ts), and the OCR stage's ms per
// image next to the CLIP image stage's (preprocess + image tower, batched) in the same run, on the same decoded
// pixels: the generated set plus camera-sized JPEGs. test-clip is the tiny generated CLIP; vit-cost has the
// compute of CLIP ViT-B/32's image tower (random weights).
// Usage: bun bench/ocr.ts [--threads 2] [--batch 32] [--rounds 1] [--camera 8] [--size 3000x2000]
import { join } from "node:path";
import { decodeShortSide } from "../src/engine/analysis/stage-runner.ts";
import { decodeImage } from "../src/engine/decode.ts";
import { ImageEmbedder } from "../src/engine/embed.ts";
import type { ResolvedModel } from "../src/engine/models.ts";
import { createOcrStage } from "../src/engine/ocr/ocr-stage.ts";
import { textTerms } from "../src/engine/ocr/ocr-terms.ts";
import { preprocessInto } from "../src/engine/preprocess.ts";
import type { DecodedImage } from "../src/engine/types.ts";
import { plantedWords, writeOcrPhotos } from "../test/engine/ocr-photos.ts";
import { BENCH_DIR, cameraJpegs, flag, loadNote, testClipModel, vitCostModel } from "./fixtures.ts";

const threads = Number(flag("--threads", "2"));
const batchSize = Number(flag("--batch", "32"));
const rounds = Number(flag("--rounds", "1"));
const cameraCount = Number(flag("--camera", "8"));
const [camW, camH] = flag("--size", "3000x2000").split("x").map(Number) as [number, number];

console.log(`threads ${threads} (OCR sessions and CLIP session alike), CLIP batch ${batchSize}, ${rounds} round(s); start: ${loadNote()}`);
const ocr = await createOcrStage({ threads });
const clips: [string, ResolvedModel][] = [
  ["test-clip", await testClipModel()],
  ["vit-cost (ViT-B/32 compute)", await vitCostModel()],
];
const side = decodeShortSide(224, [ocr]);

// Accuracy --------------------------------------------------------------------------------------------------------
const photos = await writeOcrPhotos(join(BENCH_DIR, "ocr-photos"));
let planted = 0;
let exact = 0;
let folded = 0;
const misses: string[] = [];
const generated: DecodedImage[] = [];
for (const { path, case: c } of photos) {
  const image = await decodeImage(path, { targetShortSide: side });
  generated.push(image);
  const lines = await ocr.analyze(image);
  const words = new Set(lines.flatMap((l) => l.text.split(/[^\p{L}\p{N}]+/u)));
  const terms = new Set(lines.flatMap((l) => textTerms(l.text)));
  for (const w of plantedWords(c)) {
    planted++;
    if (words.has(w)) exact++;
    if (terms.has(textTerms(w)[0]!)) folded++;
    else misses.push(`${c.name}: "${w}" (read: ${lines.map((l) => JSON.stringify(l.text)).join(", ") || "nothing"})`);
  }
}
const pct = (n: number) => `${n}/${planted} = ${((100 * n) / planted).toFixed(1)} %`;
console.log(`\nword accuracy on ${photos.length} generated photos, ${planted} planted words:`);
console.log(`  exact (case-sensitive whole word):     ${pct(exact)}`);
console.log(`  as --text-in finds them (folded term): ${pct(folded)}`);
for (const m of misses) console.log(`  missed ${m}`);

// Speed -----------------------------------------------------------------------------------------------------------
const camera = cameraCount > 0 ? await cameraJpegs(cameraCount, camW, camH) : null;
const cameraImages = camera ? await Promise.all(camera.files.map((f) => decodeImage(f, { targetShortSide: side }))) : [];

async function ocrMsPerImage(images: DecodedImage[]): Promise<number> {
  await ocr.analyze(images[0]!); // warm-up
  const t0 = performance.now();
  for (let r = 0; r < rounds; r++) for (const image of images) await ocr.analyze(image);
  return (performance.now() - t0) / (rounds * images.length);
}

async function clipMsPerImage(model: ResolvedModel, images: DecodedImage[]): Promise<number> {
  const embedder = await ImageEmbedder.open(model, { threads });
  try {
    const spec = model.manifest.preprocess;
    const size = 3 * spec.size * spec.size;
    const tensor = new Float32Array(batchSize * size);
    const run = async () => {
      for (let start = 0; start < images.length; start += batchSize) {
        const batch = images.slice(start, start + batchSize);
        batch.forEach((img, i) => preprocessInto(img, spec, tensor, i * size));
        await embedder.embed(tensor.subarray(0, batch.length * size), batch.length);
      }
    };
    await run(); // warm-up
    const t0 = performance.now();
    for (let r = 0; r < rounds; r++) await run();
    return (performance.now() - t0) / (rounds * images.length);
  } finally {
    await embedder.close();
  }
}

const sets: [string, DecodedImage[]][] = [[`generated set (${generated.length} photos, 0.15-4.3 MP, decoded to short side >= ${side})`, generated]];
if (camera) sets.push([`${cameraImages.length} camera JPEGs ${camW}x${camH}, decoded to ${cameraImages[0]!.width}x${cameraImages[0]!.height}`, cameraImages]);
console.log(`\nms per image, same process and run (decode excluded; the pipeline decodes once for all stages):`);
for (const [label, images] of sets) {
  const ocrMs = await ocrMsPerImage(images);
  console.log(`  ${label}`);
  console.log(`    OCR stage (det + cls + rec):        ${ocrMs.toFixed(1).padStart(7)} ms/img`);
  for (const [name, model] of clips) {
    const clipMs = await clipMsPerImage(model, images);
    console.log(`    CLIP ${name.padEnd(29)}  ${clipMs.toFixed(1).padStart(7)} ms/img   OCR / CLIP = ${(ocrMs / clipMs).toFixed(2)}`);
  }
}
await ocr.close();
console.log(`\nend: ${loadNote()}`);
