// "These 12 unassigned faces look like Alice": one batched pass over all named persons at once. A pre-filter drops
// what cannot yield anything new before any vector is compared: persons without a name or prototypes, faces that
// already carry a pending suggestion, and faces that found nobody against this same set of prototypes last time.
// (The pipeline this replaces ran one job per person, ~245 ms of overhead each, and 92 % of those jobs found nothing.)
import type { DuckDBConnection } from "@duckdb/node-api";
import { namedPrototypes, nearestPersons } from "./persons-match.ts";
import {
  blobToFloats,
  ensurePersonsTables,
  hasTable,
  idList,
  PersonsError,
  readerOf,
  readSettings,
  type RowReader,
} from "./persons-table.ts";

/** Faces compared per native call: bounds memory at any collection size (8192 × 512 floats = 16 MiB). */
const CHUNK = 8192;

export interface SuggestionReport {
  threshold: number;
  generation: number;
  persons: { total: number; searched: number; skippedUnnamed: number; skippedNoPrototypes: number };
  faces: { unassigned: number; searched: number; skippedPending: number; skippedChecked: number };
  /** Face × person comparisons: one job per person over every unassigned face, against this pass. */
  comparisons: { naive: number; done: number; savedPct: number };
  /** Native batched searches run (the old pipeline ran one job per person). */
  searches: number;
  suggested: number;
  byPerson: { personId: number; name: string; suggested: number }[];
  ms: number;
}

export async function computeSuggestions(conn: DuckDBConnection, opts: { threshold?: number } = {}): Promise<SuggestionReport> {
  const t0 = performance.now();
  await ensurePersonsTables(conn);
  const read = readerOf(conn);
  const settings = await readSettings(read);
  const threshold = opts.threshold ?? settings.suggestThreshold;
  const generation = settings.generation;
  // Rows that no longer mean anything: their face is gone, or it was assigned meanwhile.
  await conn.run(`DELETE FROM face_suggestions WHERE face_id NOT IN (SELECT id FROM faces)
    OR (status IN ('pending', 'no-match') AND face_id IN (SELECT id FROM faces WHERE person_id IS NOT NULL))
    OR (person_id IS NOT NULL AND person_id NOT IN (SELECT id FROM persons))`);

  const [[total, unnamed, noProtos]] = (await read(`SELECT count(*), count(*) FILTER (name IS NULL),
    count(*) FILTER (name IS NOT NULL AND NOT EXISTS (SELECT 1 FROM person_prototypes pp WHERE pp.person_id = persons.id))
    FROM persons`)) as [[bigint, bigint, bigint]];
  const [[unassigned, pending, checked]] = (await read(
    `SELECT count(*),
       count(*) FILTER (EXISTS (SELECT 1 FROM face_suggestions s WHERE s.face_id = f.id AND s.status = 'pending')),
       count(*) FILTER (EXISTS (SELECT 1 FROM face_suggestions s WHERE s.face_id = f.id AND s.status = 'no-match' AND s.generation = $1))
     FROM faces f WHERE f.person_id IS NULL`,
    [generation],
  )) as [[bigint, bigint, bigint]];

  const set = await namedPrototypes(read);
  const rejected = new Map<number, Set<number>>();
  for (const [f, p] of await read("SELECT face_id, person_id FROM face_suggestions WHERE status = 'rejected'")) {
    const s = rejected.get(Number(f)) ?? new Set<number>();
    s.add(Number(p));
    rejected.set(Number(f), s);
  }
  const perFace = 1 + Math.min(4, Math.max(0, ...[...rejected.values()].map((s) => s.size)));

  let searched = 0;
  let searches = 0;
  let suggested = 0;
  const counts = new Map<number, number>();
  if (set.persons > 0) {
    for (let after = -1; ; ) {
      const rows = await read(
        `SELECT f.id, f.image_id, f.embedding FROM faces f WHERE f.person_id IS NULL AND f.id > ${after}
           AND NOT EXISTS (SELECT 1 FROM face_suggestions s WHERE s.face_id = f.id
             AND (s.status = 'pending' OR (s.status = 'no-match' AND s.generation = $1)))
         ORDER BY f.id LIMIT ${CHUNK}`,
        [generation],
      );
      if (rows.length === 0) break;
      after = Number(rows[rows.length - 1]![0]);
      const queries = new Float32Array(rows.length * set.dims);
      rows.forEach((r, i) => {
        const v = blobToFloats(r[2]!);
        if (v.length !== set.dims) throw new Error(`face ${r[0]} is ${v.length}-d; the prototypes are ${set.dims}-d`);
        queries.set(v, i * set.dims);
      });
      const matches = nearestPersons(queries, rows.length, set, perFace);
      searches++;
      searched += rows.length;
      const faceIds = rows.map((r) => Number(r[0]));
      await conn.run(`DELETE FROM face_suggestions WHERE status = 'no-match' AND face_id IN (${idList(faceIds)})`);
      const appender = await conn.createAppender("face_suggestions");
      const now = new Date().toISOString().replace("T", " ").slice(0, 23);
      rows.forEach((r, i) => {
        const no = rejected.get(faceIds[i]!);
        const best = matches[i]!.find((m) => !no?.has(m.personId));
        const hit = best !== undefined && best.score >= threshold;
        appender.appendBigInt(BigInt(faceIds[i]!));
        appender.appendBigInt(BigInt(r[1] as bigint));
        if (hit) appender.appendBigInt(BigInt(best.personId));
        else appender.appendNull();
        appender.appendFloat(best?.score ?? -1);
        appender.appendVarchar(now);
        appender.appendVarchar(hit ? "pending" : "no-match");
        appender.appendBigInt(BigInt(generation));
        appender.endRow();
        if (hit) {
          suggested++;
          counts.set(best.personId, (counts.get(best.personId) ?? 0) + 1);
        }
      });
      appender.closeSync();
    }
  }
  const names = new Map<number, string>();
  if (counts.size > 0) {
    for (const [id, name] of await read(`SELECT id, name FROM persons WHERE id IN (${idList(counts.keys())})`)) {
      names.set(Number(id), name as string);
    }
  }
  const naive = Number(total) * Number(unassigned);
  const done = searched * set.persons;
  return {
    threshold,
    generation,
    persons: {
      total: Number(total),
      searched: set.persons,
      skippedUnnamed: Number(unnamed),
      skippedNoPrototypes: Number(noProtos),
    },
    faces: { unassigned: Number(unassigned), searched, skippedPending: Number(pending), skippedChecked: Number(checked) },
    comparisons: { naive, done, savedPct: naive > 0 ? +((100 * (naive - done)) / naive).toFixed(1) : 0 },
    searches,
    suggested,
    byPerson: [...counts]
      .map(([personId, n]) => ({ personId, name: names.get(personId) ?? "", suggested: n }))
      .sort((a, b) => b.suggested - a.suggested),
    ms: +(performance.now() - t0).toFixed(1),
  };
}

export interface Suggestion {
  faceId: number;
  imageId: number;
  path: string;
  box: [number, number, number, number];
  imageWidth: number | null;
  imageHeight: number | null;
  score: number;
}

/** Pending suggestions for one person, best first. */
export async function personSuggestions(read: RowReader, personId: number, limit = 100): Promise<Suggestion[]> {
  if (!(await hasTable(read, "face_suggestions")) || !(await hasTable(read, "faces"))) return [];
  const rows = await read(
    `SELECT s.face_id, f.image_id, i.path, f.x0, f.y0, f.x1, f.y1, s.score, i.width, i.height FROM face_suggestions s
     JOIN faces f ON f.id = s.face_id AND f.person_id IS NULL JOIN images i ON i.id = f.image_id
     WHERE s.person_id = $1 AND s.status = 'pending' ORDER BY s.score DESC, s.face_id LIMIT ${Math.trunc(limit)}`,
    [personId],
  );
  return rows.map((r) => ({
    faceId: Number(r[0]),
    imageId: Number(r[1]),
    path: r[2] as string,
    box: [Number(r[3]), Number(r[4]), Number(r[5]), Number(r[6])],
    score: Number(r[7]),
    imageWidth: r[8] === null ? null : Number(r[8]),
    imageHeight: r[9] === null ? null : Number(r[9]),
  }));
}

/** "Not Alice": these faces are not suggested for this person again. */
export async function rejectSuggestions(conn: DuckDBConnection, personId: number, faceIds: number[]): Promise<number> {
  await ensurePersonsTables(conn);
  const read = readerOf(conn);
  const ids = [...new Set(faceIds)];
  if (ids.length === 0) throw new PersonsError("invalid", "no face ids given");
  if ((await read(`SELECT 1 FROM persons WHERE id = ${idList([personId])}`)).length === 0) {
    throw new PersonsError("not-found", `no person ${personId}`);
  }
  const known = new Set((await read(`SELECT id FROM faces WHERE id IN (${idList(ids)})`)).map((r) => Number(r[0])));
  if (known.size !== ids.length) throw new PersonsError("not-found", `no face ${ids.filter((f) => !known.has(f)).join(", ")}`);
  const rows = await read(
    `UPDATE face_suggestions SET status = 'rejected' WHERE person_id = $1 AND status = 'pending'
     AND face_id IN (${idList(ids)}) RETURNING face_id`,
    [personId],
  );
  // A face never suggested for this person, and not theirs (that takes an unassign), is rejected ahead of time ("not
  // this person"): recorded as any rejection is, so no later pass proposes it. Nothing reads a rejection's score.
  const { generation } = await readSettings(read);
  const ahead = await read(
    `INSERT INTO face_suggestions (face_id, image_id, person_id, score, status, generation)
     SELECT f.id, f.image_id, $1, 0, 'rejected', $2 FROM faces f
     WHERE f.id IN (${idList(ids)}) AND f.person_id IS DISTINCT FROM $1 AND NOT EXISTS (
       SELECT 1 FROM face_suggestions s WHERE s.face_id = f.id AND s.person_id = $1 AND s.status = 'rejected')
     RETURNING face_id`,
    [personId, generation],
  );
  return rows.length + ahead.length;
}
