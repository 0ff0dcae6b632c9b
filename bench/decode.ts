// Decode throughput with and without JPEG shrink-on-load, and preprocess cost, on camera-sized JPEGs.
// Usage: bun bench/decode.ts [--size 3000x2000] [--rounds 3]
import { readdirSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { decodeImage } from "../src/engine/decode.ts";
import { loadSharp } from "../src/engine/native.ts";
import { preprocess } from "../src/engine/preprocess.ts";
import type { DecodedImage, PreprocessSpec } from "../src/engine/types.ts";

const args = process.argv.slice(2);
const flag = (name: string, fallback: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : fallback;
};
const [width, height] = flag("--size", "3000x2000").split("x").map(Number) as [number, number];
const rounds = Number(flag("--rounds", "3"));
const CLIP: PreprocessSpec = {
  size: 224,
  interpolation: "bicubic",
  mean: [0.48145466, 0.4578275, 0.40821073],
  std: [0.26862954, 0.26130258, 0.27577711],
};

const photos = join(import.meta.dir, "../../shared/photos");
const sharp = loadSharp();
const sources = readdirSync(photos).filter((f) => /\.(jpe?g|png)$/i.test(f));
const files: Uint8Array[] = [];
for (const name of sources) {
  files.push(
    await sharp(join(photos, name)).resize(width, height, { fit: "fill" }).jpeg({ quality: 90 }).toBuffer(),
  );
}
const mb = files.reduce((s, f) => s + f.length, 0) / files.length / 1e6;
console.log(
  `${files.length} JPEGs of ${width}x${height} (${mb.toFixed(1)} MB avg), made in memory by upscaling ${photos} with sharp; ` +
    `${cpus().length} CPUs, sharp concurrency ${sharp.concurrency()}, ${rounds} rounds, one image at a time`,
);

const run = async (label: string, targetShortSide: number | undefined) => {
  // One untimed pass to warm up libvips and the JIT.
  for (const f of files.slice(0, 3)) preprocess(await decodeImage(f, { targetShortSide }), CLIP);
  let decodeMs = 0;
  let preprocessMs = 0;
  let last: DecodedImage | undefined;
  for (let r = 0; r < rounds; r++) {
    for (const f of files) {
      const t0 = performance.now();
      last = await decodeImage(f, { targetShortSide });
      const t1 = performance.now();
      preprocess(last, CLIP);
      const t2 = performance.now();
      decodeMs += t1 - t0;
      preprocessMs += t2 - t1;
    }
  }
  const n = rounds * files.length;
  console.log(
    `${label.padEnd(28)} decoded to ${`${last!.width}x${last!.height}`.padEnd(10)} ` +
      `decode ${(n / (decodeMs / 1000)).toFixed(1).padStart(6)} img/s (${(decodeMs / n).toFixed(1)} ms)  ` +
      `preprocess ${(preprocessMs / n).toFixed(2)} ms/img  ` +
      `decode+preprocess ${(n / ((decodeMs + preprocessMs) / 1000)).toFixed(1)} img/s`,
  );
};
await run("full decode", undefined);
await run("shrink-on-load (target 224)", 224);

// Preprocess alone on typical shrink-on-load outputs.
for (const [w, h] of [[375, 250], [500, 375], [700, 466]] as const) {
  const img = await decodeImage(await sharp(join(photos, "coffee.png")).resize(w, h, { fit: "fill" }).png().toBuffer());
  for (let i = 0; i < 20; i++) preprocess(img, CLIP);
  const n = 200;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) preprocess(img, CLIP);
  console.log(`preprocess ${w}x${h} -> 3x224x224: ${((performance.now() - t0) / n).toFixed(2)} ms/img`);
}
