// `imgd index` memory with and without the analysis stages: peak (VmHWM) and mean resident memory (VmRSS sampled
// every 200 ms) of the CLI process, and its images/s, on camera-sized JPEGs, with test-clip and the test stage models.
// Each configuration indexes the same folder into a fresh index, in its own process, `--rounds` times.
// Usage: bun bench/index-memory.ts [--dir PHOTOS | --count 60] [--size 4032x3024] [--rounds 1] [--configs none,faces,objects,faces+objects] [--trace]
import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { BENCH_DIR, REPO, cameraJpegs, flag, loadNote } from "./fixtures.ts";

/** A folder of photos to index instead of the tiled JPEGs (HEICs from a phone, say). */
const photoDir = flag("--dir", "");
const count = Number(flag("--count", "60"));
const [width, height] = flag("--size", "4032x3024").split("x").map(Number) as [number, number];
const rounds = Number(flag("--rounds", "1"));
const configs = flag("--configs", "none,faces,objects,faces+objects").split(",");
/** Also print the RSS timeline, one sample a second. */
const trace = process.argv.includes("--trace");

const FLAGS: Record<string, string[]> = {
  none: [],
  faces: ["--faces", "--face-detector", "test-scrfd", "--face-embedder", "test-arcface"],
  objects: ["--objects", "--object-model", "test-yolo"],
};
FLAGS["faces+objects"] = [...FLAGS.faces!, ...FLAGS.objects!];

interface Run {
  peakMiB: number;
  meanMiB: number;
  imagesPerSecond: number;
  /** ms per image of the stages and the decode, from the run's own timings. */
  perImage: string;
  peakDecoded: { images: number; bytes: number };
}

function statusKiB(pid: number, key: string): number | null {
  try {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

async function indexOnce(dir: string, files: number, stageFlags: string[]): Promise<Run> {
  const indexDir = join(BENCH_DIR, "index-memory-idx");
  rmSync(indexDir, { recursive: true, force: true });
  const args = [join(REPO, "src/cli/main.ts"), "index", dir, "--index", indexDir, "--model", "test-clip", "--models", join(REPO, "models"), "--json", ...stageFlags];
  const child = spawn(process.execPath, args, { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  const samples: number[] = [];
  let peak = 0;
  const timer = setInterval(() => {
    const rss = statusKiB(child.pid!, "VmRSS");
    const hwm = statusKiB(child.pid!, "VmHWM");
    if (rss !== null) samples.push(rss);
    if (hwm !== null) peak = Math.max(peak, hwm);
  }, 200);
  const code = await new Promise<number | null>((resolve) => child.on("exit", resolve));
  clearInterval(timer);
  if (code !== 0) throw new Error(`imgd index ${stageFlags.join(" ")} exited with ${code}`);
  const report = JSON.parse(out.trim().split("\n").pop()!) as {
    imagesPerSecond: number;
    embedded: number;
    stages: { stage: string; msPerImage: number }[];
    /** Absent from runs before it was reported: a before/after comparison runs the old pipeline too. */
    peakDecoded?: { images: number; bytes: number };
  };
  if (report.embedded !== files) throw new Error(`indexed ${report.embedded} of ${files} images`);
  // The last samples are the close; the middle of the run is what a long run holds.
  const mean = samples.reduce((s, v) => s + v, 0) / Math.max(1, samples.length);
  if (trace) console.log(`  RSS MiB each second: ${samples.filter((_, i) => i % 5 === 0).map((v) => Math.round(v / 1024)).join(" ")}`);
  const perImage = report.stages
    .filter((r) => ["decode", "faces", "objects", "ocr"].includes(r.stage))
    .map((r) => `${r.stage} ${r.msPerImage.toFixed(0)}`)
    .join(", ");
  return { peakMiB: peak / 1024, meanMiB: mean / 1024, imagesPerSecond: report.imagesPerSecond, perImage, peakDecoded: report.peakDecoded ?? { images: NaN, bytes: NaN } };
}

let dir: string;
let files: number;
if (photoDir) {
  dir = photoDir;
  files = readdirSync(dir).filter((f) => !f.startsWith(".")).length;
  console.log(`${files} photos in ${dir}; ${loadNote()}`);
} else {
  const folder = await cameraJpegs(count, width, height);
  [dir, files] = [folder.dir, count];
  console.log(`${count} JPEGs ${width}x${height} (avg ${(folder.avgBytes / 1e6).toFixed(1)} MB)${folder.built ? ", built now" : ""}; ${loadNote()}`);
}
for (const config of configs) {
  const stageFlags = FLAGS[config];
  if (!stageFlags) throw new Error(`unknown config ${config}; one of ${Object.keys(FLAGS).join(", ")}`);
  for (let r = 0; r < rounds; r++) {
    const run = await indexOnce(dir, files, stageFlags);
    console.log(
      `${config.padEnd(14)} peak ${run.peakMiB.toFixed(0).padStart(5)} MiB  mean ${run.meanMiB.toFixed(0).padStart(5)} MiB  ${run.imagesPerSecond.toFixed(2).padStart(6)} img/s` +
        `  held at most ${run.peakDecoded.images} decoded (${(run.peakDecoded.bytes / 2 ** 20).toFixed(0)} MiB)  ms/img: ${run.perImage}`,
    );
  }
}
console.log(loadNote());
