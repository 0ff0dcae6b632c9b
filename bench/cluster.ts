// Face-like clustering benchmark, end to end from 512-d embeddings (PCA to 50 dims, then HDBSCAN):
//   bun bench/cluster.ts [--n 10000] [--modes auto,exact,approximate] [--r-max 20000] [--no-r]
// Data: 300 identities per 10K with ~30 photos each plus 10 % noise faces (one photo of a person seen once); see
// faces() for the model. Prints per mode: time per stage, total, peak RSS, ARI vs truth; then R's
// dbscan::hdbscan on the same PCA-50 data (its time, imgd/R ratios, ARI(imgd, R)). R builds an N×N distance
// matrix (8·N² bytes), so it is skipped above --r-max points (default 20000) and the output says so.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { flag } from "./fixtures.ts";
import { adjustedRandIndex, clusterEmbeddings, EXACT_UP_TO, type ClusterResult } from "../src/engine/cluster/index.ts";
import { gaussian, pca } from "../src/engine/cluster/pca.ts";
import { mulberry32 } from "../src/engine/seeded-random.ts";

const n = Number(flag("--n", "10000"));
const rMax = Number(flag("--r-max", "20000"));
const runR = !process.argv.includes("--no-r");
const defaultModes = n <= EXACT_UP_TO ? "auto,approximate" : "auto";
const modes = flag("--modes", defaultModes).split(",") as ("auto" | "exact" | "approximate")[];
const dims = 512, minClusterSize = 10;

// Face embeddings have a low intrinsic dimension: identities differ along ~64 latent directions (placed on 64
// seeded random axes of the 512; PCA and distances are rotation-invariant), and each photo adds variation both in
// that subspace (pose, light) and isotropic noise. Same-identity cosine ≈ 0.75, different identities ≈ 0 ± 0.13.
const LATENT = 64;
function faces(n: number, seed: number) {
  const rand = mulberry32(seed);
  const identities = Math.round((300 * n) / 10000);
  const noise = Math.round(n * 0.1);
  const axes = Array.from({ length: dims }, (_, i) => i);
  for (let i = 0; i < LATENT; i++) { const j = i + Math.floor(rand() * (dims - i)); [axes[i], axes[j]] = [axes[j]!, axes[i]!]; }
  const unit = (v: Float32Array, scale = 1) => {
    let s = 0;
    for (let k = 0; k < v.length; k++) s += v[k]! * v[k]!;
    s = scale / Math.sqrt(s);
    for (let k = 0; k < v.length; k++) v[k]! *= s;
    return v;
  };
  const latent = (scale: number) => {
    const v = new Float32Array(dims);
    for (let i = 0; i < LATENT; i++) v[axes[i]!] = gaussian(rand);
    return unit(v, scale);
  };
  const isotropic = (scale: number) => unit(Float32Array.from({ length: dims }, () => gaussian(rand)), scale);
  const centres = Array.from({ length: identities }, () => latent(1));
  const data = new Float32Array(n * dims), truth = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const row = data.subarray(i * dims, (i + 1) * dims);
    const inSubspace = latent(0.6), iso = isotropic(0.6);
    const face = i < n - noise;
    const base = face ? centres[i % identities]! : latent(1); // a noise face is a one-off identity
    truth[i] = face ? i % identities : -1;
    for (let k = 0; k < dims; k++) row[k] = base[k]! + inSubspace[k]! + iso[k]!;
    unit(row);
  }
  return { data, truth, identities };
}

/** Peak RSS since the last reset (Linux: VmHWM, reset through clear_refs); elsewhere the current RSS. */
const peakRssMb = (): number => {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"));
  return m ? Number(m[1]) / 1024 : process.memoryUsage().rss / 2 ** 20;
};
const resetPeakRss = (): void => {
  Bun.gc(true); // the generator's garbage should not count as clustering's peak
  try { writeFileSync("/proc/self/clear_refs", "5"); } catch { /* not Linux: peak covers the whole run */ }
};
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const clusters = (l: Int32Array) => new Set(Array.from(l).filter((x) => x >= 0)).size;

const { data, truth, identities } = faces(n, 42);
console.log(`n=${n} dims=${dims} identities=${identities} noise=${truth.filter((t) => t < 0).length} minClusterSize=${minClusterSize} cores=${navigator.hardwareConcurrency} load average ${loadavg()[0]!.toFixed(2)} (timings are inflated while it exceeds the cores)`);

const runs: { mode: string; ms: number; result: ClusterResult }[] = [];
for (const mode of modes) {
  resetPeakRss();
  const t = performance.now();
  const result = clusterEmbeddings(data, n, dims, { minClusterSize, pca: 50, ...(mode === "auto" ? {} : { exact: mode === "exact" }) });
  const ms = performance.now() - t;
  runs.push({ mode, ms, result });
  const stages = Object.entries(result.timings).map(([k, v]) => `${k} ${v.toFixed(0)} ms`).join(", ");
  console.log(`imgd ${mode} (${result.exact ? "exact" : "approximate"}): total ${s(ms)}  peak RSS ${peakRssMb().toFixed(0)} MB  ARI vs truth ${adjustedRandIndex(result.labels, truth).toFixed(4)}  clusters ${clusters(result.labels)}  noise ${result.labels.filter((x) => x < 0).length}`);
  console.log(`  stages: ${stages}${result.knnComponents !== undefined ? `  (kNN forest components: ${result.knnComponents})` : ""}`);
}

const rscript = Bun.which("Rscript");
if (!runR) console.log("R comparison skipped (--no-r)");
else if (!rscript) console.log("R comparison skipped: Rscript not found (Debian: r-cran-dbscan)");
else if (n > rMax) console.log(`R comparison skipped: n=${n} > --r-max ${rMax} (R's hdbscan builds an N×N distance matrix, ${(8 * n * n / 2 ** 30).toFixed(0)} GB here)`);
else {
  // R clusters the same PCA-50 rows imgd clusters (same seed → same projection); its time excludes reading the CSV.
  const reduced = pca(data, n, dims, { dims: 50 });
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
    const rMs = Number(out[0]) * 1000;
    const rLabels = Int32Array.from(out.slice(1), (v) => Number(v) - 1); // R: 0 = noise, clusters 1..k
    console.log(`R dbscan::hdbscan on the same PCA-50 data: ${s(rMs)}  ARI vs truth ${adjustedRandIndex(rLabels, truth).toFixed(4)}  clusters ${clusters(rLabels)}`);
    for (const { mode, ms, result } of runs) {
      const hdbscanMs = ms - (result.timings.pca ?? 0);
      console.log(`  imgd ${mode}: end to end / R = ${(ms / rMs).toFixed(3)}  HDBSCAN only / R = ${(hdbscanMs / rMs).toFixed(3)}  ARI(imgd, R) = ${adjustedRandIndex(result.labels, rLabels).toFixed(4)}`);
    }
  }
}
