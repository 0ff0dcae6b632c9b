// The one clustering entry point: optional PCA, then HDBSCAN.
import { hdbscan, type HdbscanOptions, type HdbscanResult } from "./hdbscan.ts";
import { pca } from "./pca.ts";

export type ClusterOptions = HdbscanOptions;
export type { HdbscanResult as ClusterResult } from "./hdbscan.ts";
export { EXACT_UP_TO, hdbscan } from "./hdbscan.ts";
export { adjustedRandIndex } from "./ari.ts";
export { fitPca, projectPca } from "./pca.ts";

/** pca: output dims (default 50), or false to cluster the raw vectors. Skipped when dims is already ≤ the target. */
export function clusterEmbeddings(
  vectors: Float32Array, n: number, dims: number, opts: ClusterOptions & { pca?: number | false },
): HdbscanResult {
  const target = opts.pca === false ? dims : (opts.pca ?? 50);
  const start = performance.now();
  const reduce = target < dims && n > 1;
  if (reduce) opts.onProgress?.("pca", 0);
  const reduced = reduce ? pca(vectors, n, dims, { dims: target }) : vectors;
  const pcaMs = performance.now() - start;
  if (reduce) opts.onProgress?.("pca", 1);
  const result = hdbscan(reduced, n, Math.min(target, dims), opts);
  return { ...result, timings: { pca: pcaMs, ...result.timings } };
}
