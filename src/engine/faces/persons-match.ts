// Matching faces to persons in one batched, exact search: all query faces against all prototypes in a single native
// call (USearch exactSearch, SIMD), instead of one search per face or one job per person. At 2,000 faces × 2,500
// prototypes × 512 dims that is 2.6 GFLOP, well under a second; the prototypes are few by design (≤ 5 a person).
import type { DuckDBConnection } from "@duckdb/node-api";
import { loadUSearch } from "../native.ts";
import { blobToFloats, hasTable, readSettings, type RowReader } from "./persons-table.ts";

export interface PrototypeSet {
  /** persons_settings.generation the set was read at. */
  generation: number;
  dims: number;
  /** Row-major prototypes, one row per entry of `personOf`. */
  vectors: Float32Array;
  personOf: Int32Array | number[];
  /** Persons in the set (each has at least one prototype). */
  persons: number;
}

export interface PersonMatch {
  personId: number;
  /** Cosine similarity to the person's nearest prototype. */
  score: number;
}

const EMPTY: Omit<PrototypeSet, "generation"> = { dims: 0, vectors: new Float32Array(0), personOf: [], persons: 0 };

/** Prototypes of named persons (the targets of auto-assignment and suggestions); empty before any person exists. */
export async function namedPrototypes(read: RowReader): Promise<PrototypeSet> {
  const { generation } = await readSettings(read);
  if (!(await hasTable(read, "person_prototypes"))) return { generation, ...EMPTY };
  const rows = await read(
    `SELECT pp.person_id, pp.embedding FROM person_prototypes pp JOIN persons p ON p.id = pp.person_id
     WHERE p.name IS NOT NULL ORDER BY pp.person_id`,
  );
  if (rows.length === 0) return { generation, ...EMPTY };
  const first = blobToFloats(rows[0]![1]!);
  const dims = first.length;
  const vectors = new Float32Array(rows.length * dims);
  const personOf: number[] = [];
  rows.forEach(([p, e], i) => {
    const v = i === 0 ? first : blobToFloats(e!);
    if (v.length !== dims) throw new Error(`person ${p} has a ${v.length}-d prototype; others are ${dims}-d`);
    vectors.set(v, i * dims);
    personOf.push(Number(p));
  });
  return { generation, dims, vectors, personOf, persons: new Set(personOf).size };
}

/**
 * Refuses, before anything is written, a face embedder whose embeddings cannot be compared with the named persons'
 * prototypes: auto-assignment would fail every batch of the run. `recorded` is the embedder the index last ran
 * (its manifest), named as the way to keep the persons. Persons are never dropped to make room for another model.
 */
export async function assertEmbedderFitsPersons(read: RowReader, embedder: { name: string; dims: number }, recorded: string | undefined): Promise<void> {
  if (!(await hasTable(read, "person_prototypes"))) return;
  const [[persons, bytes]] = (await read(
    `SELECT count(DISTINCT p.id), min(octet_length(pp.embedding)) FROM person_prototypes pp JOIN persons p ON p.id = pp.person_id
     WHERE p.name IS NOT NULL`,
  )) as [[bigint, bigint | null]];
  if (bytes === null || Number(bytes) / 4 === embedder.dims) return;
  const n = Number(persons);
  const dims = Number(bytes) / 4;
  const other = recorded !== undefined && recorded !== embedder.name ? recorded : undefined;
  const made = other ? ` by ${other}` : "";
  throw new Error(
    `face embedder ${embedder.name} makes ${embedder.dims}-d embeddings, but this index's ${n} named person${n === 1 ? "" : "s"} ` +
      `${n === 1 ? "was" : "were"} made from ${dims}-d ones${made}: no new face could be matched to them. ` +
      `To keep the persons, run with --face-embedder ${other ?? "NAME (the embedder they were made with)"}; ` +
      `to use ${embedder.name}, index into a new --index and name the persons there again. Nothing was changed.`,
  );
}

/** The generation's prototype set, read once per connection and generation (index time calls this per batch). */
const cached = new WeakMap<DuckDBConnection, PrototypeSet>();

export async function cachedNamedPrototypes(conn: DuckDBConnection, read: RowReader): Promise<PrototypeSet> {
  const { generation } = await readSettings(read);
  const hit = cached.get(conn);
  if (hit && hit.generation === generation) return hit;
  const set = await namedPrototypes(read);
  cached.set(conn, set);
  return set;
}

/**
 * For each of the n query faces (row-major, L2-normalised), its `perFace` best persons by nearest prototype, best
 * first; each person appears once per face.
 */
export function nearestPersons(queries: Float32Array, n: number, set: PrototypeSet, perFace = 1): PersonMatch[][] {
  if (n === 0 || set.persons === 0) return Array.from({ length: n }, () => []);
  if (queries.length !== n * set.dims) {
    throw new Error(`faces are ${queries.length / Math.max(n, 1)}-d but the persons' prototypes are ${set.dims}-d`);
  }
  const rowsInSet = set.personOf.length;
  // Several prototypes of one person may be nearest; fetch enough rows to see `perFace` distinct persons.
  const k = Math.min(rowsInSet, perFace === 1 ? 1 : perFace * 5);
  const { exactSearch, MetricKind } = loadUSearch();
  const result = exactSearch(set.vectors, queries, set.dims, k, MetricKind.IP, 0);
  // exactSearch answers a single query with un-batched Matches, whose keys hold only that query's results.
  const counts = "counts" in result ? result.counts : [BigInt(result.keys.length)];
  const out: PersonMatch[][] = [];
  for (let q = 0; q < n; q++) {
    const found: PersonMatch[] = [];
    const seen = new Set<number>();
    const got = Number(counts[q]);
    for (let j = 0; j < got && found.length < perFace; j++) {
      const row = Number(result.keys[q * k + j]);
      const personId = set.personOf[row]!;
      if (seen.has(personId)) continue;
      seen.add(personId);
      // The IP "distance" is 1 - dot; prototypes and faces are unit vectors, so dot is the cosine.
      found.push({ personId, score: 1 - result.distances[q * k + j]! });
    }
    out.push(found);
  }
  return out;
}
