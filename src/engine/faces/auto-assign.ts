// Index time: new faces join the named person whose nearest prototype is close enough. Called inside the index
// transaction right after the faces are inserted, once per written batch: one batched search, one UPDATE.
import type { DuckDBConnection } from "@duckdb/node-api";
import { cachedNamedPrototypes, nearestPersons } from "./persons-match.ts";
import { idList, readerOf, readSettings } from "./persons-table.ts";

export interface NewFace {
  id: number;
  imageId: number;
  embedding: Float32Array;
}

/** threshold: cosine to a prototype; default the index's assign_threshold setting (imgd faces settings). */
export async function autoAssignFaces(
  conn: DuckDBConnection,
  faces: NewFace[],
  opts: { threshold?: number } = {},
): Promise<{ assigned: number }> {
  if (faces.length === 0) return { assigned: 0 };
  const read = readerOf(conn);
  // Before anyone is named (or on a worker's shard) there is nothing to match against: no tables are created.
  const set = await cachedNamedPrototypes(conn, read);
  if (set.persons === 0) return { assigned: 0 };
  const threshold = opts.threshold ?? (await readSettings(read)).assignThreshold;
  const dims = set.dims;
  const queries = new Float32Array(faces.length * dims);
  faces.forEach((f, i) => {
    if (f.embedding.length !== dims) {
      throw new Error(`face ${f.id} has a ${f.embedding.length}-d embedding; the persons' prototypes are ${dims}-d`);
    }
    queries.set(f.embedding, i * dims);
  });
  const matches = nearestPersons(queries, faces.length, set, 1);
  const pairs: string[] = [];
  faces.forEach((f, i) => {
    const best = matches[i]![0];
    if (best && best.score >= threshold) pairs.push(`(${idList([f.id])},${idList([best.personId])})`);
  });
  if (pairs.length === 0) return { assigned: 0 };
  // A face the user already placed is never overridden.
  await conn.run(`UPDATE faces SET person_id = m.person_id, assigned_by = 'auto'
    FROM (VALUES ${pairs.join(",")}) m(face_id, person_id)
    WHERE faces.id = m.face_id AND (faces.assigned_by IS NULL OR faces.assigned_by <> 'user')`);
  return { assigned: pairs.length };
}
