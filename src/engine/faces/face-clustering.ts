// `imgd faces cluster`: clusters every face (no cap: the cluster module switches to its approximate mode past its
// exact limit, and memory stays O(N·k)), stores cluster_id, and turns clusters into persons.
//
// A cluster joins the person most of its already-placed faces belong to (placed by the user, by auto-assignment,
// or by an earlier clustering into a person since named), unless more of its faces sit in one unnamed person of an
// earlier run: then it stays that person, so unnamed persons are stable across runs. Otherwise it becomes a new
// unnamed person.
// Only faces without a person, or clustered into a still-unnamed person, move: a user's decision is never undone.
import type { DuckDBConnection } from "@duckdb/node-api";
import { clusterEmbeddings } from "../cluster/index.ts";
import { deleteEmptyUnnamedPersons, refreshPersons } from "./persons-prototypes.ts";
import { blobToFloats, ensurePersonsTables, hasTable, noFacesError, readerOf } from "./persons-table.ts";

/**
 * Most neighbours HDBSCAN's density estimate (min_samples) may use for faces. Its neighbour lists cost
 * faces × min_samples in memory and time: 5,000 on 15K faces took 65 s and 3 GB, 100 takes 2.7 s and 70 MiB. And a
 * density estimate over more neighbours than a person has faces merges persons (300 people of 50 faces each came
 * out as 4 clusters at 100). sklearn refuses min_samples above the number of samples; this bound is for the cost.
 */
export const MAX_MIN_SAMPLES = 100;

export interface FaceClusteringOptions {
  /** Smallest group of faces that counts as a person (HDBSCAN min_cluster_size). */
  minClusterSize?: number;
  /** 1..MAX_MIN_SAMPLES; default minClusterSize, at most MAX_MIN_SAMPLES. */
  minSamples?: number;
  /** PCA target dims before clustering, or false; default 50. */
  pca?: number | false;
  /** Stage (read, pca, knn, mst, ..., write, refresh) and its completed fraction 0..1. */
  onProgress?: (stage: string, fraction: number) => void;
}

export interface FaceClusteringReport {
  faces: number;
  /** The min_samples used: as asked, or minClusterSize capped at MAX_MIN_SAMPLES. */
  minSamples: number;
  clusters: number;
  noise: number;
  persons: { created: number; reused: number; joinedExisting: number; removed: number; refreshed: number };
  /** Faces whose person changed in this run. */
  moved: number;
  exact: boolean;
  /** Milliseconds per stage, in run order. */
  timings: Record<string, number>;
}

const PAGE = 16_384;

export async function clusterFaces(conn: DuckDBConnection, opts: FaceClusteringOptions = {}): Promise<FaceClusteringReport> {
  const minClusterSize = opts.minClusterSize ?? 3;
  if (opts.minSamples !== undefined && !(Number.isInteger(opts.minSamples) && opts.minSamples >= 1 && opts.minSamples <= MAX_MIN_SAMPLES)) {
    throw new Error(`min samples must be a whole number from 1 to ${MAX_MIN_SAMPLES}, got ${opts.minSamples}`);
  }
  const minSamples = opts.minSamples ?? Math.min(minClusterSize, MAX_MIN_SAMPLES);
  const read = readerOf(conn);
  const progress = opts.onProgress ?? (() => {});
  if (!(await hasTable(read, "faces"))) throw noFacesError("not-found");
  await ensurePersonsTables(conn);
  const timings: Record<string, number> = {};
  let mark = performance.now();
  const lap = (stage: string) => {
    const now = performance.now();
    timings[stage] = +(now - mark).toFixed(1);
    mark = now;
  };

  // read: every face, a page at a time, into one matrix
  const [[total]] = (await read("SELECT count(*) FROM faces")) as [[bigint]];
  const n = Number(total);
  const ids = new Float64Array(n);
  const personOf = new Float64Array(n).fill(NaN);
  const byCluster = new Uint8Array(n); // 1 when placed by an earlier clustering
  const keptApart = new Uint8Array(n); // 1 when the user took the face out of every person
  let vectors = new Float32Array(0);
  let dims = 0;
  let i = 0;
  progress("read", 0);
  for (let after = -1; i < n; ) {
    const rows = await read(
      `SELECT id, embedding, person_id, assigned_by FROM faces WHERE id > ${after} ORDER BY id LIMIT ${PAGE}`,
    );
    if (rows.length === 0) break;
    for (const r of rows) {
      if (i === n) break; // rows appended meanwhile cannot happen under the writer lock; stay in bounds regardless
      const v = blobToFloats(r[1]!);
      if (dims === 0) {
        dims = v.length;
        vectors = new Float32Array(n * dims);
      }
      if (v.length !== dims) throw new Error(`face ${r[0]} has a ${v.length}-d embedding; others are ${dims}-d`);
      vectors.set(v, i * dims);
      ids[i] = Number(r[0]);
      if (r[2] !== null) personOf[i] = Number(r[2]);
      byCluster[i] = r[3] === "cluster" ? 1 : 0;
      keptApart[i] = r[2] === null && r[3] === "user" ? 1 : 0;
      i++;
    }
    after = Number(rows[rows.length - 1]![0]);
    progress("read", i / Math.max(n, 1));
  }
  lap("read");

  const result = clusterEmbeddings(vectors, n, Math.max(dims, 1), {
    minClusterSize,
    minSamples,
    metric: "cosine",
    pca: opts.pca,
    onProgress: progress,
  });
  Object.assign(timings, Object.fromEntries(Object.entries(result.timings).map(([k, v]) => [k, +v.toFixed(1)])));
  mark = performance.now();

  // decide: which person each cluster is
  const named = new Set<number>(
    (await read("SELECT id FROM persons WHERE name IS NOT NULL")).map((r) => Number(r[0])),
  );
  const movable = (j: number) =>
    keptApart[j] === 0 && (Number.isNaN(personOf[j]!) || (byCluster[j] === 1 && !named.has(personOf[j]!)));
  const members = new Map<number, number[]>();
  result.labels.forEach((label, j) => {
    if (label < 0) return;
    const list = members.get(label) ?? [];
    list.push(j);
    members.set(label, list);
  });
  const targetOf = new Map<number, number>();
  const claimed = new Set<number>();
  const stats = { created: 0, reused: 0, joinedExisting: 0 };
  const pending: number[] = [];
  for (const [label, js] of members) {
    const [anchored, anchoredCount] = plurality(js.filter((j) => !movable(j) && keptApart[j] === 0).map((j) => personOf[j]!));
    const earlierVotes = js.filter((j) => movable(j) && !Number.isNaN(personOf[j]!)).map((j) => personOf[j]!);
    const [earlier, earlierCount] = plurality(earlierVotes.filter((p) => !claimed.has(p)));
    // A few placed faces pull in a cluster of new faces, but do not take over a cluster an earlier run formed.
    if (anchored !== null && anchoredCount >= earlierCount) {
      targetOf.set(label, anchored);
      stats.joinedExisting++;
    } else if (earlier !== null) {
      targetOf.set(label, earlier);
      claimed.add(earlier);
      stats.reused++;
    } else pending.push(label);
  }
  const created = pending.length === 0 ? [] : await newUnnamedPersons(conn, pending.length);
  pending.forEach((label, k) => targetOf.set(label, created[k]!));
  stats.created = created.length;
  lap("assign");

  // write: cluster ids for all faces, persons for the movable ones, in one UPDATE through a temp table
  progress("write", 0);
  const touched = new Set<number>();
  await conn.run("CREATE OR REPLACE TEMP TABLE face_cluster_updates (id BIGINT, cluster_id INTEGER, person_id BIGINT, assigned_by VARCHAR)");
  const appender = await conn.createAppender("face_cluster_updates", "main", "temp");
  let moved = 0;
  for (let j = 0; j < n; j++) {
    const label = result.labels[j]!;
    const before = Number.isNaN(personOf[j]!) ? null : personOf[j]!;
    const after = movable(j) ? (label >= 0 ? targetOf.get(label)! : null) : before;
    if (after !== before) {
      moved++;
      if (before !== null) touched.add(before);
      if (after !== null) touched.add(after);
    }
    appender.appendBigInt(BigInt(ids[j]!));
    if (label >= 0) appender.appendInteger(label);
    else appender.appendNull();
    if (after === null) appender.appendNull();
    else appender.appendBigInt(BigInt(after));
    if (after === null) appender.appendNull();
    else appender.appendVarchar(movable(j) ? "cluster" : "user");
    appender.endRow();
  }
  appender.closeSync();
  // A face that was not movable keeps its person and how it got there.
  await conn.run(`UPDATE faces SET cluster_id = u.cluster_id, person_id = u.person_id,
      assigned_by = CASE WHEN faces.person_id IS NOT DISTINCT FROM u.person_id AND faces.assigned_by IS NOT NULL
        THEN faces.assigned_by ELSE u.assigned_by END
    FROM temp.face_cluster_updates u WHERE faces.id = u.id`);
  await conn.run("DROP TABLE temp.face_cluster_updates");
  // Unnamed persons left without faces were clusters of an earlier run that dissolved.
  const removedIds = await deleteEmptyUnnamedPersons(conn, null);
  for (const id of removedIds) touched.delete(id);
  progress("write", 1);
  lap("write");

  progress("refresh", 0);
  const refreshed = await refreshPersons(conn, touched);
  progress("refresh", 1);
  lap("refresh");

  return {
    faces: n,
    minSamples,
    clusters: members.size,
    noise: result.labels.filter((l) => l < 0).length,
    persons: { ...stats, removed: removedIds.length, refreshed: refreshed.persons },
    moved,
    exact: result.exact,
    timings,
  };
}

/** The value most entries hold (ties: the smallest) and its count; [null, 0] for none. */
function plurality(values: number[]): [number | null, number] {
  const counts = new Map<number, number>();
  for (const v of values) counts.set(v, (counts.get(v) ?? 0) + 1);
  let best: number | null = null;
  let bestCount = 0;
  for (const [v, c] of counts) if (c > bestCount || (c === bestCount && best !== null && v < best)) [best, bestCount] = [v, c];
  return [best, bestCount];
}

async function newUnnamedPersons(conn: DuckDBConnection, count: number): Promise<number[]> {
  const rows = await readerOf(conn)(
    `INSERT INTO persons (name) SELECT NULL FROM range(${Math.trunc(count)}) RETURNING id`,
  );
  return rows.map((r) => Number(r[0])).sort((a, b) => a - b);
}
