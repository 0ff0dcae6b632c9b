// A person's centroid and prototypes. One centroid blurs a person seen young and old, with and without glasses;
// a few prototypes (spherical k-means centres of their faces) keep those looks apart, so a new face is matched to
// the nearest look rather than to an average nobody resembles.
import type { DuckDBConnection } from "@duckdb/node-api";
import { mulberry32 } from "../seeded-random.ts";
import { dot } from "../vector-math.ts";
import { blobToFloats, bumpGeneration, floatsAsBytes, idList, PersonsError, readerOf } from "./persons-table.ts";

interface PersonFace {
  id: number;
  embedding: Float32Array;
}

export const MAX_PROTOTYPES = 5;
/** One more prototype per this many faces, up to MAX_PROTOTYPES: few faces cannot support many looks. */
const FACES_PER_PROTOTYPE = 8;
const KMEANS_ITERATIONS = 12;

export interface PersonModel {
  centroid: Float32Array;
  prototypes: Float32Array[];
}

/** `vectors` holds n rows of `dims` floats (L2-normalised). Deterministic for the same input. */
export function personModel(vectors: Float32Array, n: number, dims: number): PersonModel {
  const centroid = new Float32Array(dims);
  for (let i = 0; i < n; i++) for (let d = 0; d < dims; d++) centroid[d]! += vectors[i * dims + d]!;
  normalize(centroid);
  const k = Math.min(MAX_PROTOTYPES, Math.ceil(n / FACES_PER_PROTOTYPE));
  const prototypes = k <= 1 ? [centroid.slice()] : sphericalKMeans(vectors, n, dims, k);
  return { centroid, prototypes };
}

/** k-means++ seeding, then Lloyd iterations on the unit sphere (similarity = dot product). */
function sphericalKMeans(vectors: Float32Array, n: number, dims: number, k: number): Float32Array[] {
  const random = mulberry32(n * 7919 + dims);
  const row = (i: number) => vectors.subarray(i * dims, (i + 1) * dims);
  const centres: Float32Array[] = [row(Math.floor(random() * n)).slice()];
  const far = new Float64Array(n);
  while (centres.length < k) {
    let total = 0;
    for (let i = 0; i < n; i++) {
      let best = -Infinity;
      for (const c of centres) best = Math.max(best, dot(row(i), c));
      far[i] = Math.max(0, 1 - best);
      total += far[i]!;
    }
    if (total === 0) break; // every face is one of the centres already
    let pick = random() * total;
    let chosen = n - 1;
    for (let i = 0; i < n; i++) if ((pick -= far[i]!) <= 0) { chosen = i; break; }
    centres.push(row(chosen).slice());
  }
  const assignment = new Int32Array(n).fill(-1);
  for (let iter = 0; iter < KMEANS_ITERATIONS; iter++) {
    let moved = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestSim = -Infinity;
      centres.forEach((c, j) => {
        const s = dot(row(i), c);
        if (s > bestSim) [best, bestSim] = [j, s];
      });
      if (assignment[i] !== best) moved++;
      assignment[i] = best;
    }
    if (moved === 0 && iter > 0) break;
    const sums = centres.map(() => new Float32Array(dims));
    const sizes = new Int32Array(centres.length);
    for (let i = 0; i < n; i++) {
      const s = sums[assignment[i]!]!;
      const r = row(i);
      for (let d = 0; d < dims; d++) s[d]! += r[d]!;
      sizes[assignment[i]!]!++;
    }
    sums.forEach((s, j) => {
      if (sizes[j]! > 0) centres[j] = normalize(s);
    });
  }
  // An empty cluster keeps its seed, which is one of the faces: still a real look of this person.
  return centres;
}

/**
 * Recomputes centroid and prototypes of `personIds` in one pass: one read of all their faces, one delete and one
 * append of prototypes, one UPDATE of centroids. Faces the user or clustering assigned define a person; faces
 * auto-assigned at index time count only while a person has no others, so a wrong auto-assignment cannot drag the
 * person towards the next one. Persons left without faces keep their row (a name may come before any face) with
 * no centroid and no prototypes.
 */
export async function refreshPersons(conn: DuckDBConnection, personIds: Iterable<number>): Promise<{ persons: number; prototypes: number }> {
  const ids = [...new Set(personIds)];
  if (ids.length === 0) return { persons: 0, prototypes: 0 };
  const read = readerOf(conn);
  const list = idList(ids);
  const rows = await read(
    `SELECT person_id, embedding, assigned_by = 'auto', id FROM faces WHERE person_id IN (${list}) ORDER BY person_id, id`,
  );
  const byPerson = new Map<number, { own: PersonFace[]; auto: PersonFace[] }>();
  for (const [p, e, auto, faceId] of rows) {
    const id = Number(p);
    const entry = byPerson.get(id) ?? { own: [], auto: [] };
    (auto ? entry.auto : entry.own).push({ id: Number(faceId), embedding: blobToFloats(e!) });
    byPerson.set(id, entry);
  }
  // Faces found with two face models (part of the index analysed with another embedder) cannot share a centroid:
  // copied into one matrix, the shorter ones would leave zeros and the longer ones spill into their neighbours.
  for (const [id, entry] of byPerson) {
    const faces = entry.own.length > 0 ? entry.own : entry.auto;
    const odd = faces.find((f) => f.embedding.length !== faces[0]!.embedding.length);
    if (odd) {
      throw new PersonsError(
        "conflict",
        `face ${odd.id} has a ${odd.embedding.length}-d embedding; person ${id}'s face ${faces[0]!.id} has a ` +
          `${faces[0]!.embedding.length}-d one (found with another face model): analyse the index's faces again with ` +
          "one model (imgd index --faces --face-embedder NAME) first",
      );
    }
  }
  await conn.run(`DELETE FROM person_prototypes WHERE person_id IN (${list})`);
  await conn.run("CREATE OR REPLACE TEMP TABLE person_centroid_updates (id BIGINT, centroid BLOB)");
  const prototypes = await conn.createAppender("person_prototypes");
  const centroids = await conn.createAppender("person_centroid_updates", "main", "temp");
  let written = 0;
  for (const id of ids) {
    const entry = byPerson.get(id);
    const faces = entry && (entry.own.length > 0 ? entry.own : entry.auto);
    centroids.appendBigInt(BigInt(id));
    if (!faces || faces.length === 0) {
      centroids.appendNull();
      centroids.endRow();
      continue;
    }
    const dims = faces[0]!.embedding.length;
    const matrix = new Float32Array(faces.length * dims);
    faces.forEach((f, i) => matrix.set(f.embedding, i * dims));
    const model = personModel(matrix, faces.length, dims);
    centroids.appendBlob(floatsAsBytes(model.centroid));
    centroids.endRow();
    for (const proto of model.prototypes) {
      prototypes.appendBigInt(BigInt(id));
      prototypes.appendBlob(floatsAsBytes(proto));
      prototypes.endRow();
      written++;
    }
  }
  prototypes.closeSync();
  centroids.closeSync();
  await conn.run("UPDATE persons SET centroid = u.centroid FROM temp.person_centroid_updates u WHERE persons.id = u.id");
  await conn.run("DROP TABLE temp.person_centroid_updates");
  await bumpGeneration(conn);
  return { persons: ids.length, prototypes: written };
}

/**
 * Deletes the rows of images `imageIds` from `tables` (each keyed by image_id). A person is its faces: when faces go
 * with them (an image removed, or analysed again), the persons they belonged to are recomputed, or the prototypes of
 * photos no longer in the index would go on claiming new faces at index time.
 */
export async function deleteImageRows(conn: DuckDBConnection, tables: readonly string[], imageIds: number[]): Promise<void> {
  if (imageIds.length === 0) return;
  const list = idList(imageIds);
  const touched = tables.includes("faces")
    ? (await readerOf(conn)(`SELECT DISTINCT person_id FROM faces WHERE person_id IS NOT NULL AND image_id IN (${list})`)).map((r) => Number(r[0]))
    : [];
  for (const table of tables) await conn.run(`DELETE FROM "${table}" WHERE image_id IN (${list})`);
  const removed = new Set(await deleteEmptyUnnamedPersons(conn, touched));
  await refreshPersons(conn, touched.filter((id) => !removed.has(id)));
}

/**
 * Deletes the unnamed persons (of `among`, or all) that have no face left, with their prototypes and suggestions,
 * and returns their ids. Such a person is a cluster whose faces are gone: nothing of it is left to show or keep.
 * A named one stays (a name may come before any face).
 */
export async function deleteEmptyUnnamedPersons(conn: DuckDBConnection, among: number[] | null): Promise<number[]> {
  if (among !== null && among.length === 0) return [];
  const scope = among === null ? "" : `AND id IN (${idList(among)})`;
  const removed = (
    await readerOf(conn)(`DELETE FROM persons WHERE name IS NULL ${scope}
      AND NOT EXISTS (SELECT 1 FROM faces f WHERE f.person_id = persons.id) RETURNING id`)
  ).map((r) => Number(r[0]));
  if (removed.length > 0) {
    const list = idList(removed);
    await conn.run(`DELETE FROM person_prototypes WHERE person_id IN (${list})`);
    await conn.run(`DELETE FROM face_suggestions WHERE person_id IN (${list})`);
  }
  return removed;
}

function normalize(v: Float32Array): Float32Array {
  let s = 0;
  for (let d = 0; d < v.length; d++) s += v[d]! * v[d]!;
  const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
  for (let d = 0; d < v.length; d++) v[d]! *= inv;
  return v;
}
