// k=10 search latency of USearch over random unit 512-d vectors, one query at a time.
// Usage: bun bench/vector-search.ts [--sizes 100000] [--dtypes f32]   (lists: --sizes 100000,1000000 --dtypes f32,i8,f16)
// Built indexes are cached under .bench/vectors/ because building 1M vectors takes many minutes.
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Index } from "usearch";
import { loadUSearch } from "../src/engine/native.ts";
import { percentile } from "./fixtures.ts";

const DIMS = 512;
const QUERIES = 1000;
const K = 10;

const { values } = parseArgs({
  options: { sizes: { type: "string", default: "100000" }, dtypes: { type: "string", default: "f32" } },
});
const sizes = values.sizes!.split(",").map(Number);
const dtypes = values.dtypes!.split(",");
const cacheDir = join(import.meta.dir, "..", ".bench", "vectors");
mkdirSync(cacheDir, { recursive: true });

function seededUnitVectors(count: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32) - 0.5;
  const out = new Float32Array(count * DIMS);
  for (let r = 0; r < count; r++) {
    let norm = 0;
    for (let d = 0; d < DIMS; d++) norm += (out[r * DIMS + d] = rand()) ** 2;
    norm = Math.sqrt(norm);
    for (let d = 0; d < DIMS; d++) out[r * DIMS + d]! /= norm;
  }
  return out;
}

function newIndex(dtype: string): Index {
  const { Index } = loadUSearch();
  return new Index({
    dimensions: DIMS, metric: "cos" as never, quantization: dtype as never,
    connectivity: 0, expansion_add: 0, expansion_search: 0, multi: false,
  });
}

function builtIndex(size: number, dtype: string): { index: Index; buildMs: number | null } {
  const file = join(cacheDir, `random-${size}x${DIMS}-${dtype}.usearch`);
  const index = newIndex(dtype);
  if (existsSync(file)) {
    index.view(file);
    return { index, buildMs: null };
  }
  const t0 = performance.now();
  const chunk = 50_000;
  for (let start = 0; start < size; start += chunk) {
    const n = Math.min(chunk, size - start);
    const keys = BigUint64Array.from({ length: n }, (_, i) => BigInt(start + i + 1));
    index.add(keys, seededUnitVectors(n, start + 1), cpus().length);
    process.stderr.write(`  built ${start + n}/${size}\r`);
  }
  const buildMs = performance.now() - t0;
  index.save(`${file}.tmp`);
  renameSync(`${file}.tmp`, file);
  return { index, buildMs };
}

console.log(`USearch k=${K} single-query latency, ${QUERIES} queries, ${DIMS}-d random unit vectors, ${cpus().length} CPUs`);
for (const size of sizes) {
  for (const dtype of dtypes) {
    const { index, buildMs } = builtIndex(size, dtype);
    const queries = seededUnitVectors(QUERIES, 0xdecaf);
    for (let i = 0; i < 50; i++) index.search(queries.subarray(i * DIMS, (i + 1) * DIMS), K, 1);
    const times: number[] = [];
    for (let i = 0; i < QUERIES; i++) {
      const t = performance.now();
      index.search(queries.subarray(i * DIMS, (i + 1) * DIMS), K, 1);
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const build = buildMs === null ? "cached" : `built in ${(buildMs / 1000).toFixed(1)} s`;
    console.log(
      `${String(size).padStart(8)} ${dtype.padEnd(4)} p50 ${percentile(times, 50).toFixed(3)} ms  p99 ${percentile(times, 99).toFixed(3)} ms  (${build})`,
    );
  }
}
