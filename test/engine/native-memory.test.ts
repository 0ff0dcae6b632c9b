// returnLargeBlocks: freed large native blocks go back to the system. Run in child processes, so that glibc's
// settings and heaps are fresh; the blocks come from glibc's malloc, as onnxruntime's tensors do.
import { expect, test } from "bun:test";
import { join } from "node:path";

const SCRIPT = `
import { dlopen, FFIType } from "bun:ffi";
import { returnLargeBlocks } from ${JSON.stringify(join(import.meta.dir, "../../src/engine/native-memory.ts"))};
const { symbols: c } = dlopen("libc.so.6", {
  malloc: { args: [FFIType.u64], returns: FFIType.ptr },
  free: { args: [FFIType.ptr], returns: FFIType.void },
  memset: { args: [FFIType.ptr, FFIType.i32, FFIType.u64], returns: FFIType.ptr },
});
const anonMiB = () => Number(require("fs").readFileSync("/proc/self/status", "utf8").match(/RssAnon:\\s+(\\d+)/)[1]) / 1024;
if (process.argv.includes("fixed")) returnLargeBlocks();
const before = anonMiB();
// Two rounds of 100 x 1 MiB, each block followed by a small allocation that stays (as a live object would): freeing
// the first round's mmapped blocks makes glibc raise its threshold, so by default the second round comes from the
// heap, where the small ones pin it, and stays there once freed.
const pins = [];
for (let round = 0; round < 2; round++) {
  const blocks = [];
  for (let i = 0; i < 100; i++) {
    blocks.push(c.malloc(2 ** 20));
    pins.push(c.malloc(64));
  }
  for (const b of blocks) c.memset(b, 1, 2 ** 20);
  for (const b of blocks) c.free(b);
}
console.log(anonMiB() - before);
`;

/** Runs `script` in a fresh process (fresh glibc heaps and settings) with `arg`; returns the number it prints. */
async function childMiB(script: string, arg: string): Promise<number> {
  const proc = Bun.spawn([process.execPath, "-e", script, arg], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  return Number(out.trim());
}

test("after returnLargeBlocks, freed 1 MiB blocks leave the process; by default glibc keeps them", async () => {
  const [kept, returned] = await Promise.all([childMiB(SCRIPT, "default"), childMiB(SCRIPT, "fixed")]);
  expect(kept).toBeGreaterThan(60);
  expect(returned).toBeLessThan(15);
});

// openOnnxSession without the arena (as the server opens its towers) trims after each run: what the run freed
// leaves the process. The same session opened straight from onnxruntime keeps it in glibc's heap.
const RUN_SCRIPT = `
import { dlopen, FFIType } from "bun:ffi";
import { readFileSync } from "node:fs";
import { openOnnxSession } from ${JSON.stringify(join(import.meta.dir, "../../src/engine/onnx-session.ts"))};
import { loadOrt } from ${JSON.stringify(join(import.meta.dir, "../../src/engine/native.ts"))};
const anonMiB = () => Number(readFileSync("/proc/self/status", "utf8").match(/RssAnon:\\s+(\\d+)/)[1]) / 1024;
// glibc trims on its own when freed blocks happen to end up at the top of a heap, which depends on where they
// landed: fixed thresholds turn that off, so that what a run frees stays unless someone trims.
const { symbols: c } = dlopen("libc.so.6", {
  malloc: { args: [FFIType.u64], returns: FFIType.ptr },
  mallopt: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
});
c.mallopt(-1, 2 ** 30); // M_TRIM_THRESHOLD
c.mallopt(-3, 32 * 2 ** 20); // M_MMAP_THRESHOLD, its largest value
const ort = loadOrt();
const path = ${JSON.stringify(join(import.meta.dir, "../../models/test-clip/image.onnx"))};
const session = process.argv.includes("raw")
  ? await ort.InferenceSession.create(path, { intraOpNumThreads: 1, graphOptimizationLevel: "all", enableCpuMemArena: false, enableMemPattern: false })
  : await openOnnxSession(path, { threads: 1, arena: false });
const pixels = new Float32Array(64 * 3 * 224 * 224).fill(0.5);
const before = anonMiB();
for (let i = 0; i < 3; i++) {
  await session.run({ pixel_values: new ort.Tensor("float32", pixels, [64, 3, 224, 224]) });
  c.malloc(64); // a small block that stays, as a live object would: the freed run below it cannot just be cut off the top
}
console.log(anonMiB() - before);
`;

test("a session opened without the arena hands back what its runs freed; onnxruntime alone keeps it", async () => {
  const [raw, lean] = await Promise.all([childMiB(RUN_SCRIPT, "raw"), childMiB(RUN_SCRIPT, "lean")]);
  console.log(`kept after 3 runs of 64 images: onnxruntime alone ${raw.toFixed(1)} MiB, openOnnxSession ${lean.toFixed(1)} MiB`);
  expect(lean).toBeLessThan(2);
  expect(raw).toBeGreaterThan(lean + 5);
});
