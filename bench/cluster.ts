// Face-like clustering benchmark: bun bench/cluster.ts [--n 10000] [--no-exact] [--no-r]
// 300 identities per 10K (unit centres, members = centre + Gaussian spread, cosine to centre ≈ 0.6–0.8), ~10 % noise.
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { clusterEmbeddings } from "../src/engine/cluster/index.ts";
import { adjustedRandIndex } from "../src/engine/cluster/ari.ts";
import { hdbscan } from "../src/engine/cluster/hdbscan.ts";
import { gaussian, pca } from "../src/engine/cluster/pca.ts";
import { mulberry32 } from "../src/engine/seeded-random.ts";

const argv = process.argv.slice(2);
const n = Number(argv[argv.indexOf("--n") + 1] ?? 10000) || 10000;
const runExact = !argv.includes("--no-exact") && n <= 20000;
const runR = !argv.includes("--no-r");
const dims = 512, minClusterSize = 10;

function faces(n: number, seed: number) {
  const rand = mulberry32(seed);
  const identities = Math.round((300 * n) / 10000);
  const noise = Math.round(n * 0.1);
  const unit = (v: Float32Array) => { let s = 0; for (const x of v) s += x * x; s = Math.sqrt(s); for (let k = 0; k < v.length; k++) v[k]! /= s; return v; };
  const centres = Array.from({ length: identities }, () => unit(Float32Array.from({ length: dims }, () => gaussian(rand))));
  const data = new Float32Array(n * dims), truth = new Int32Array(n);
  const spread = 0.9 / Math.sqrt(dims); // ‖noise‖ ≈ 0.9 → cosine to centre ≈ 0.74
  for (let i = 0; i < n; i++) {
    const row = data.subarray(i * dims, (i + 1) * dims);
    if (i < n - noise) {
      const c = i % identities;
      truth[i] = c;
      for (let k = 0; k < dims; k++) row[k] = centres[c]![k]! + gaussian(rand) * spread;
    } else {
      truth[i] = -1;
      for (let k = 0; k < dims; k++) row[k] = gaussian(rand);
    }
    unit(row);
  }
  return { data, truth, identities };
}

const peakRss = () => {
  const m = /VmHWM:\s+(\d+) kB/.exec(require("node:fs").readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
};
const fmt = (t: Record<string, number>) => Object.entries(t).map(([k, v]) => `${k}=${k === "knnComponents" ? v : v.toFixed(0) + "ms"}`).join(" ");

const { data, truth, identities } = faces(n, 42);
console.log(`n=${n} dims=${dims} identities=${identities} noise=${truth.filter((t) => t < 0).length} minClusterSize=${minClusterSize} cores=${navigator.hardwareConcurrency}`);

let t = performance.now();
const approx = clusterEmbeddings(data, n, dims, { minClusterSize, pca: 50 });
const approxMs = performance.now() - t;
const clusters = (l: Int32Array) => new Set(Array.from(l).filter((x) => x >= 0)).size;
console.log(`imgd approximate: ${(approxMs / 1000).toFixed(2)} s  ARI vs truth ${adjustedRandIndex(approx.labels, truth).toFixed(4)}  clusters ${clusters(approx.labels)}  noise ${approx.labels.filter((x) => x < 0).length}  peak RSS ${peakRss().toFixed(0)} MB`);
console.log(`  stages: ${fmt(approx.timings)}`);

const reduced = pca(data, n, dims, { dims: 50 });
let exactLabels: Int32Array | undefined;
if (runExact) {
  t = performance.now();
  const exact = hdbscan(reduced, n, 50, { minClusterSize, exact: true });
  const ms = performance.now() - t;
  exactLabels = exact.labels;
  console.log(`imgd exact (after PCA): ${(ms / 1000).toFixed(2)} s  ARI vs truth ${adjustedRandIndex(exact.labels, truth).toFixed(4)}  ARI vs approximate ${adjustedRandIndex(exact.labels, approx.labels).toFixed(4)}  peak RSS ${peakRss().toFixed(0)} MB`);
  console.log(`  stages: ${fmt(exact.timings)}`);
}

const rscript = Bun.which("Rscript");
if (runR && rscript) {
  const dir = mkdtempSync(join(tmpdir(), "imgd-bench-"));
  const csv = join(dir, "x.csv");
  const lines: string[] = [];
  for (let i = 0; i < n; i++) lines.push(Array.from(reduced.subarray(i * 50, (i + 1) * 50), (v) => v.toPrecision(9)).join(","));
  writeFileSync(csv, lines.join("\n"));
  const r = Bun.spawnSync([rscript, "-e",
    `suppressMessages(library(dbscan)); x <- as.matrix(read.csv('${csv}', header=FALSE)); t <- system.time(h <- hdbscan(x, minPts=${minClusterSize})); cat(t[['elapsed']], '\\n'); cat(h$cluster, sep='\\n')`]);
  rmSync(dir, { recursive: true });
  if (r.exitCode !== 0) console.log(`R failed: ${r.stderr.toString().slice(0, 300)}`);
  else {
    const out = r.stdout.toString().trim().split("\n");
    const rSeconds = Number(out[0]);
    const rLabels = Int32Array.from(out.slice(1), (s) => Number(s) - 1);
    const pcaMs = approx.timings.pca ?? 0;
    console.log(`R dbscan::hdbscan (on the same PCA-50 data): ${rSeconds.toFixed(2)} s  ARI vs truth ${adjustedRandIndex(rLabels, truth).toFixed(4)}`);
    console.log(`  imgd approximate HDBSCAN (excl. PCA) / R = ${((approxMs - pcaMs) / 1000 / rSeconds).toFixed(3)}   ARI(imgd approximate, R) = ${adjustedRandIndex(approx.labels, rLabels).toFixed(4)}` +
      (exactLabels ? `   ARI(imgd exact, R) = ${adjustedRandIndex(exactLabels, rLabels).toFixed(4)}` : ""));
  }
} else if (runR) console.log("R comparison skipped: Rscript not found");
