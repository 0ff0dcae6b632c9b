// Duplicates in an index. Exact: the same imohash (size + three samples) confirmed by a sha256 of the whole file,
// since imohash never reads most of a large file. Near: images whose embeddings are within a cosine threshold of
// each other, found by kNN over the index's own USearch vectors a page at a time (memory O(N), never N×N) and
// joined transitively with union-find.
import { UnionFind } from "./cluster/union-find.ts";
import { sha256File } from "./identity.ts";
import type { IndexStore, KnownFile } from "./store/index-store.ts";
import type { VectorMatch } from "./store/vectors.ts";

/**
 * Default near-duplicate cosine threshold per model, each from measurements of originals against resized (50 %),
 * re-encoded (JPEG q=60) and 5 %-cropped copies and unrelated photos (bench/near-dups.ts). A model that is not
 * listed gets FALLBACK_NEAR_THRESHOLD.
 */
export const NEAR_THRESHOLDS: Readonly<Record<string, number>> = {
  // Colour-only test model. bench/near-dups.ts on 18 photos × 4 versions + 18 unrelated mosaics: copies score
  // ≥ 0.967 with their original, unrelated pairs ≤ 0.855; F1 is 1.0 from 0.855 to 0.970 and this is the middle.
  "test-clip": 0.91,
};

/**
 * For models not measured here (no pretrained weights on the build machines) — an assumption, not a measurement:
 * CLIP-family embeddings of resized, re-encoded or lightly cropped copies are commonly cut at a cosine of about
 * 0.95. Measure with `bun bench/near-dups.ts --model NAME` once the weights are at hand and add the model above.
 */
export const FALLBACK_NEAR_THRESHOLD = 0.95;

/**
 * The loosest near-duplicate threshold `imgd dups --near` and GET /api/duplicates take (Immich's floor too: its
 * duplicate detection takes a cosine distance of at most 0.1). Below it merely similar photos join, and the pass
 * turns quadratic: each image's neighbours within the threshold become most of the index (28 s on 2,000 images
 * near 0). nearDuplicateGroups itself takes any threshold in (0, 1].
 */
export const MIN_NEAR_THRESHOLD = 0.9;

export function defaultNearThreshold(model: string): number {
  return NEAR_THRESHOLDS[model] ?? FALLBACK_NEAR_THRESHOLD;
}

export interface DuplicateImage {
  id: number;
  path: string;
}

export interface ExactGroup {
  sha256: string;
  size: number;
  images: DuplicateImage[];
}

export interface ExactReport {
  groups: ExactGroup[];
  /** Files that shared an imohash with another but turned out different in full (imohash collisions). */
  collisions: number;
  /** Files that could not be read for the full-content hash (moved or deleted since indexing). */
  unreadable: { path: string; error: string }[];
}

export interface NearImage extends DuplicateImage {
  /** Cosine similarity to the closest other member of its group. */
  similarity: number;
}

export interface NearGroup {
  images: NearImage[];
}

/** Groups of two or more indexed images with byte-identical content, largest first. */
export async function exactDuplicateGroups(store: IndexStore): Promise<ExactReport> {
  const byImohash = new Map<string, KnownFile[]>();
  for (const f of (await store.knownFiles()).values()) {
    if (f.status !== "indexed" || !f.imohash) continue;
    const same = byImohash.get(f.imohash);
    if (same) same.push(f);
    else byImohash.set(f.imohash, [f]);
  }
  const report: ExactReport = { groups: [], collisions: 0, unreadable: [] };
  for (const candidates of byImohash.values()) {
    if (candidates.length < 2) continue;
    const bySha = new Map<string, KnownFile[]>();
    for (const f of candidates) {
      let sha: string;
      try {
        sha = await sha256File(f.path);
      } catch (err) {
        report.unreadable.push({ path: f.path, error: err instanceof Error ? err.message : String(err) });
        continue;
      }
      const same = bySha.get(sha);
      if (same) same.push(f);
      else bySha.set(sha, [f]);
    }
    for (const [sha256, files] of bySha) {
      if (files.length < 2) {
        // Different content from another readable file of this imohash; alone because its copies are unreadable
        // (deleted or moved since indexing) it collides with nothing.
        if (bySha.size > 1) report.collisions += files.length;
        continue;
      }
      files.sort((a, b) => a.id - b.id);
      report.groups.push({ sha256, size: files[0]!.size, images: files.map(({ id, path }) => ({ id, path })) });
    }
    // A group whose members all differ in full leaves only singletons above; they are counted as collisions.
  }
  report.groups.sort(bySizeThenId);
  return report;
}

/** Longest stretch nearDuplicateGroups computes without letting the event loop run. */
const YIELD_AFTER_MS = 20;
/** Images whose neighbours one native call finds, on all cores (~5 ms at 100K on 2 cores). */
const SEARCH_BATCH = 64;
/**
 * How far below the threshold an i8 graph's score may be for a pair to still reach it: measured differences from the
 * exact cosine were at most 0.021 over 48K pairs (mean 0.004), so 0.05 misses none.
 */
const APPROX_MARGIN = 0.05;

export interface NearOptions {
  /** Neighbours asked of the index per image before widening; a group larger than this still joins up. */
  k?: number;
  /** Embeddings read from the catalog at a time. */
  pageSize?: number;
}

/** Groups of indexed images joined by similarity ≥ threshold (transitively), largest first. */
export async function nearDuplicateGroups(store: IndexStore, threshold: number, opts: NearOptions = {}): Promise<NearGroup[]> {
  assertThreshold(threshold);
  const k = opts.k ?? 16;
  const ids = await store.embeddedIds();
  const slot = new Map(ids.map((id, s) => [id, s]));
  const uf = new UnionFind(ids.length);
  // Closest other image per slot; NaN while it has none within the threshold.
  const best = new Float64Array(ids.length).fill(NaN);
  let ranSince = performance.now();
  for await (const page of store.embeddings(opts.pageSize ?? 4096)) {
    for (let start = 0; start < page.ids.length; start += SEARCH_BATCH) {
      const n = Math.min(SEARCH_BATCH, page.ids.length - start);
      const queries = page.vectors.subarray(start * store.dims, (start + n) * store.dims);
      const { matches, approximate } = store.nearestMany(queries, n, k);
      for (let j = 0; j < n; j++) {
        // Inside the server, let other requests in every few milliseconds: at a low threshold every image's
        // neighbours are most of the index, and a page of them takes seconds.
        if (performance.now() - ranSince > YIELD_AFTER_MS) {
          await new Promise((r) => setImmediate(r));
          ranSince = performance.now();
        }
        const a = slot.get(page.ids[start + j]!);
        if (a === undefined) continue; // written after the id list was read
        const query = queries.subarray(j * store.dims, (j + 1) * store.dims);
        for (const m of withinThreshold(store, query, matches[j]!, approximate, threshold, k)) {
          const b = slot.get(m.id);
          if (b === undefined || b === a) continue;
          uf.union(a, b);
          if (!(best[a]! >= m.score)) best[a] = m.score;
          if (!(best[b]! >= m.score)) best[b] = m.score;
        }
      }
    }
  }
  if (uf.components === ids.length) return [];
  const paths = await indexedPaths(store);
  const groups = new Map<number, NearImage[]>();
  ids.forEach((id, s) => {
    const path = paths.get(id);
    if (Number.isNaN(best[s]!) || path === undefined) return; // no near neighbour, or removed meanwhile
    const root = uf.find(s);
    const members = groups.get(root) ?? [];
    members.push({ id, path, similarity: round(best[s]!) });
    groups.set(root, members);
  });
  return [...groups.values()]
    .filter((members) => members.length >= 2)
    .map((members) => ({ images: members.sort((a, b) => a.id - b.id) }))
    .sort(bySizeThenId);
}

/**
 * Indexed images within `threshold` of `vector`, most similar first, at most `limit`: what an image about to be
 * ingested would duplicate. Goes through the store's search, so paths come from the catalog by primary key.
 */
export async function nearDuplicatesOf(store: IndexStore, vector: Float32Array, threshold: number, limit = Infinity): Promise<NearImage[]> {
  assertThreshold(threshold);
  for (let want = Math.min(limit, 8); ; want *= 4) {
    const hits = await store.search(vector, want);
    const within = hits.filter((h) => h.score >= threshold);
    if (within.length < hits.length || hits.length < want || within.length >= limit) {
      return within.slice(0, limit).map((h) => ({ id: h.id, path: h.path, similarity: round(h.score) }));
    }
  }
}

/**
 * Of the graph's `k` nearest to `query`, those at or above `threshold`. An i8 graph's scores are approximate: only
 * those within APPROX_MARGIN below the threshold are scored from their rows (most images have none, so a report at
 * 100K no longer reads 64 rows for each image); when even the k-th may qualify, the search widens.
 */
function withinThreshold(store: IndexStore, query: Float32Array, matches: VectorMatch[], approximate: boolean, threshold: number, k: number): VectorMatch[] {
  const margin = approximate ? APPROX_MARGIN : 0;
  if (matches.length === k && k < store.vectorCount && matches[k - 1]!.score >= threshold - margin) return neighboursWithin(store, query, threshold, k);
  const candidates = matches.filter((m) => m.score >= threshold - margin);
  if (!approximate || candidates.length === 0) return candidates;
  const scores = store.exactScores(candidates.map((m) => m.id), query);
  return candidates
    .map((m, i) => (Number.isNaN(scores[i]!) ? m : { id: m.id, score: scores[i]! }))
    .filter((m) => m.score >= threshold);
}

/** The neighbours of `query` at or above `threshold`, widening the search while the k-th still qualifies. */
function neighboursWithin(store: IndexStore, query: Float32Array, threshold: number, k: number): VectorMatch[] {
  for (let want = k; ; want *= 4) {
    const matches = store.nearest(query, want);
    const within = matches.filter((m) => m.score >= threshold);
    if (within.length < matches.length || matches.length < want || want >= store.vectorCount) return within;
  }
}

function assertThreshold(threshold: number): void {
  if (!(threshold > 0 && threshold <= 1)) throw new Error(`a near-duplicate threshold is a cosine similarity in (0, 1], got ${threshold}`);
}

function round(score: number): number {
  return Math.round(Math.min(1, score) * 1e4) / 1e4;
}

function bySizeThenId(a: { images: DuplicateImage[] }, b: { images: DuplicateImage[] }): number {
  return b.images.length - a.images.length || a.images[0]!.id - b.images[0]!.id;
}

async function indexedPaths(store: IndexStore): Promise<Map<number, string>> {
  const out = new Map<number, string>();
  for (const f of (await store.knownFiles()).values()) if (f.status === "indexed") out.set(f.id, f.path);
  return out;
}

