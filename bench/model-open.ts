// Opening a model as onnxruntime reads it whole (IMGD_MODEL_CACHE=off) against opening its mappable copy
// (src/engine/mapped-model.ts): open time, the peak while opening (VmHWM) and the resident memory after a few runs,
// each in a fresh process, for both towers of a real-sized model. The copy is made before timing starts. A third
// row opens the copy without prepacking the weights, as `imgd query` does for its one run: open + first run is
// what a one-shot query pays.
//
// Usage: bun bench/model-open.ts [--model clip-q8-cost|tinyclip-61m-q8-cost|tinyclip-40m-q8-cost|mobileclip-s0-q8-cost|text-cost] [--runs 3]
import { join } from "node:path";
import { NAME as Q8_COST } from "../models/test/generate-q8-cost.ts";
import { mappedModelPath } from "../src/engine/mapped-model.ts";
import { loadOrt } from "../src/engine/native.ts";
import { openOnnxSession } from "../src/engine/onnx-session.ts";
import { flag, loadNote } from "./fixtures.ts";
import { modelsDirFor, rssOf } from "./load.ts";

interface Sample {
  openMs: number;
  firstMs: number;
  peakMiB: number;
  rssMiB: number;
  runMs: number;
}

/** In the child: open `path`, run it five times on a batch of two, report. */
async function measure(path: string, tower: "image" | "text", prepack: boolean): Promise<Sample> {
  const ort = loadOrt();
  const t0 = performance.now();
  const session = await openOnnxSession(path, { threads: 2, prepack });
  const openMs = performance.now() - t0;
  const input = session.inputNames[0]!;
  const feeds =
    tower === "image"
      ? { [input]: new ort.Tensor("float32", Float32Array.from({ length: 2 * 3 * 224 * 224 }, (_, i) => Math.sin(i)), [2, 3, 224, 224]) }
      : { [input]: new ort.Tensor("int64", BigInt64Array.from({ length: 2 * 12 }, (_, i) => BigInt(1 + ((i * 7919) % 49000))), [2, 12]) };
  await session.run(feeds);
  const t1 = performance.now();
  for (let i = 0; i < 5; i++) await session.run(feeds);
  const { peak, rss } = rssOf(process.pid);
  return { openMs, firstMs: t1 - t0 - openMs, peakMiB: peak, rssMiB: rss, runMs: (performance.now() - t1) / 5 };
}

async function child(path: string, tower: "image" | "text", mapped: boolean, prepack: boolean): Promise<Sample> {
  const proc = Bun.spawn([process.execPath, import.meta.path, "--child", path, tower, String(prepack)], {
    env: { ...process.env, ...(mapped ? {} : { IMGD_MODEL_CACHE: "off" }) },
    stdout: "pipe",
    stderr: "inherit",
  });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`measuring ${path} failed`);
  return JSON.parse(out) as Sample;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

if (process.argv[2] === "--child") {
  console.log(JSON.stringify(await measure(process.argv[3]!, process.argv[4] as "image" | "text", process.argv[5] === "true")));
} else {
  const model = flag("--model", Q8_COST);
  const runs = Number(flag("--runs", "3"));
  // test-clip's towers are too small to say anything about opening a model.
  if (model === "test-clip") throw new Error(`--model must be a generated real-sized model (${Q8_COST}, text-cost, ...), not ${model}`);
  const modelsDir = modelsDirFor(model);
  console.log(`model open, ${model}, median of ${runs} fresh processes, 2 threads; ${loadNote()}`);
  console.log("tower  how                     open ms   first run ms   peak MiB   RSS MiB   run ms (batch of 2)");
  for (const tower of ["text", "image"] as const) {
    const path = join(modelsDir, model, `${tower}.onnx`);
    if (model === "text-cost" && tower === "image") continue; // test-clip's image tower, 0.4 MB
    mappedModelPath(path); // the one-time copy is not what is timed
    const rows: Record<string, Sample> = {};
    for (const [how, mapped, prepack] of [["read whole", false, true], ["mapped copy", true, true], ["mapped, not prepacked", true, false]] as const) {
      const samples: Sample[] = [];
      for (let i = 0; i < runs; i++) samples.push(await child(path, tower, mapped, prepack));
      const s: Sample = {
        openMs: median(samples.map((x) => x.openMs)),
        firstMs: median(samples.map((x) => x.firstMs)),
        peakMiB: median(samples.map((x) => x.peakMiB)),
        rssMiB: median(samples.map((x) => x.rssMiB)),
        runMs: median(samples.map((x) => x.runMs)),
      };
      rows[how] = s;
      console.log(
        `${tower.padEnd(6)} ${how.padEnd(22)} ${s.openMs.toFixed(0).padStart(9)} ${s.firstMs.toFixed(0).padStart(14)} ${s.peakMiB.toFixed(0).padStart(10)} ${s.rssMiB.toFixed(0).padStart(9)} ${s.runMs.toFixed(1).padStart(8)}`,
      );
    }
    const [a, b, c] = [rows["read whole"]!, rows["mapped copy"]!, rows["mapped, not prepacked"]!];
    console.log(`${tower.padEnd(6)} open ${(a.openMs / b.openMs).toFixed(2)}x faster, peak ${(a.peakMiB - b.peakMiB).toFixed(0)} MiB lower, RSS ${(a.rssMiB - b.rssMiB).toFixed(0)} MiB lower`);
    const oneShot = (x: Sample) => x.openMs + x.firstMs;
    console.log(`${tower.padEnd(6)} one run (open + first run): ${oneShot(b).toFixed(0)} ms prepacked, ${oneShot(c).toFixed(0)} ms not: ${(oneShot(b) / oneShot(c)).toFixed(2)}x`);
  }
}
