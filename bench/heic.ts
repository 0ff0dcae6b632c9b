// What a phone's HEIC costs next to a JPEG of the same photo: decode time of one 12 MP photo (as the index decodes
// it, for a 224-pixel model), `imgd index` throughput (test-clip) on a folder of HEICs and on their JPEG twins, and
// the process's RSS around the HEIC threads, including a 48 MP photo whose thread is ended after it.
// Needs Debian's heif-enc (apt-get install libheif-examples). The photos are upscaled from ../shared/photos and
// encoded once under .bench/heic/ (x265's default preset; the 48 MP one with its fastest).
// Usage: bun bench/heic.ts [--count 8] [--rounds 3]
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { decodeImage } from "../src/engine/decode.ts";
import { endIdleHeicThreads, heicThreadCounts } from "../src/engine/heic-decoder.ts";
import { loadSharp } from "../src/engine/native.ts";
import { BENCH_DIR, flag, loadNote, PHOTOS, REPO } from "./fixtures.ts";

const count = Number(flag("--count", "8"));
const rounds = Number(flag("--rounds", "3"));
const [WIDTH, HEIGHT] = [4032, 3024];
const dir = join(BENCH_DIR, "heic");
const jpegs = join(dir, "jpeg");
const heics = join(dir, "heic");
const sharp = loadSharp();

function heifEnc(input: string, output: string, ...flags: string[]) {
  const run = Bun.spawnSync(["heif-enc", "-q", "50", ...flags, input, "-o", output], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`heif-enc ${output}: ${run.stderr.toString()}`);
}

if (!Bun.which("heif-enc")) throw new Error("needs heif-enc: apt-get install libheif-examples");
mkdirSync(jpegs, { recursive: true });
mkdirSync(heics, { recursive: true });
const sources = readdirSync(PHOTOS).filter((f) => /\.jpe?g$/i.test(f)).sort().slice(0, count);
for (const name of sources) {
  const base = name.replace(/\.\w+$/, "");
  const jpeg = join(jpegs, `${base}.jpg`);
  if (!existsSync(jpeg)) await sharp(join(PHOTOS, name)).resize(WIDTH, HEIGHT, { fit: "fill" }).jpeg({ quality: 90 }).toFile(jpeg);
  if (!existsSync(join(heics, `${base}.heic`))) heifEnc(jpeg, join(heics, `${base}.heic`));
}
const large = join(dir, "large-48mp.heic");
if (!existsSync(large)) {
  const jpeg = join(dir, "large.jpg");
  await sharp(join(PHOTOS, sources[0]!)).resize(8064, 6048, { fit: "fill" }).jpeg({ quality: 90 }).toFile(jpeg);
  heifEnc(jpeg, large, "-p", "preset=ultrafast");
  rmSync(jpeg);
}
console.log(`${sources.length} photos at ${WIDTH}x${HEIGHT} as JPEG (q90) and HEIC (x265 q50); ${cpus().length} CPUs; ${loadNote()}`);

const rssMb = () => process.memoryUsage().rss / 2 ** 20;
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;

// Decode, one image at a time, as the index decodes for a 224-pixel model.
const decodeMs = async (folder: string, ext: string) => {
  const files = sources.map((n) => new Uint8Array(readFileSync(join(folder, n.replace(/\.\w+$/, ext)))));
  await decodeImage(files[0]!, { targetShortSide: 224 });
  const times: number[] = [];
  for (let r = 0; r < rounds; r++) {
    for (const f of files) {
      const t0 = performance.now();
      await decodeImage(f, { targetShortSide: 224 });
      times.push(performance.now() - t0);
    }
  }
  return median(times);
};
const rssBefore = rssMb();
const jpegMs = await decodeMs(jpegs, ".jpg");
const rssJpeg = rssMb();
const heicMs = await decodeMs(heics, ".heic");
const rssHeic = rssMb();
console.log(`decode 12 MP for a 224 model: JPEG ${jpegMs.toFixed(0)} ms, HEIC ${heicMs.toFixed(0)} ms (x${(heicMs / jpegMs).toFixed(1)}), median of ${rounds * sources.length}`);

// A terminated thread's memory is returned once the collector has run over it.
const settled = async () => {
  Bun.gc(true);
  await Bun.sleep(1500);
  Bun.gc(true);
  return rssMb();
};
endIdleHeicThreads();
const rssIdle = await settled();
const endedBefore = heicThreadCounts.ended;
let rssPeak = 0;
const poll = setInterval(() => (rssPeak = Math.max(rssPeak, rssMb())), 10);
const t0 = performance.now();
const big = await decodeImage(large, { targetShortSide: 224 });
const largeMs = performance.now() - t0;
clearInterval(poll);
const ended = heicThreadCounts.ended > endedBefore;
const rssLarge = await settled();
console.log(
  `RSS MB: start ${rssBefore.toFixed(0)}, after the JPEGs ${rssJpeg.toFixed(0)}, after the 12 MP HEICs (threads alive) ${rssHeic.toFixed(0)}, ` +
    `threads ended ${rssIdle.toFixed(0)}`,
);
console.log(
  `48 MP HEIC (${big.sourceWidth}x${big.sourceHeight}) ${largeMs.toFixed(0)} ms: RSS peak ${rssPeak.toFixed(0)} MB, ` +
    `its thread ended after it: ${ended ? "yes" : "no"}, RSS after ${rssLarge.toFixed(0)} MB`,
);

// `imgd index` on each folder, a fresh index each time.
const indexRate = (folder: string) => {
  const index = join(dir, "index");
  rmSync(index, { recursive: true, force: true });
  const run = Bun.spawnSync([process.execPath, join(REPO, "src/cli/main.ts"), "index", folder, "--index", index, "--model", "test-clip", "--json"], {
    env: { ...process.env, IMGD_MODELS: join(REPO, "models") },
    stdout: "pipe",
    stderr: "pipe",
  });
  if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  rmSync(index, { recursive: true, force: true });
  return JSON.parse(run.stdout.toString()).imagesPerSecond as number;
};
const jpegRate = indexRate(jpegs);
const heicRate = indexRate(heics);
console.log(`imgd index (test-clip): JPEG ${jpegRate.toFixed(1)} img/s, HEIC ${heicRate.toFixed(1)} img/s, HEIC/JPEG ${(heicRate / jpegRate).toFixed(2)}`);
