// Persons as the user sees them: list, look at one, name, merge, split, assign faces. Reads take a RowReader (the
// server's read-only path works); writes take the connection of an open write transaction and refresh the
// centroids and prototypes of every person they touched, in one pass, before returning.
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import { deleteEmptyUnnamedPersons, refreshPersons } from "./persons-prototypes.ts";
import { bumpGeneration, ensurePersonsTables, hasPersons, hasTable, idList, PersonsError, readerOf, type RowReader } from "./persons-table.ts";

export interface PersonSummary {
  id: number;
  name: string | null;
  faces: number;
  images: number;
  prototypes: number;
  pendingSuggestions: number;
  createdAt: string;
  /** A face to show for this person: the highest-scoring detection. */
  coverFaceId: number | null;
}

export interface PersonFace {
  id: number;
  imageId: number;
  path: string;
  box: [number, number, number, number];
  /** The source image's pixel size, the space `box` is in (a face crop needs it); null when it was not recorded. */
  imageWidth: number | null;
  imageHeight: number | null;
  score: number;
  personId: number | null;
  person: string | null;
  assignedBy: string | null;
  clusterId: number | null;
}

const MAX_NAME = 200;

export async function listPersons(
  read: RowReader,
  opts: { named?: boolean; limit?: number; offset?: number } = {},
): Promise<{ total: number; persons: PersonSummary[] }> {
  if (!(await hasPersons(read))) return { total: 0, persons: [] };
  const where = opts.named === undefined ? "" : opts.named ? "WHERE p.name IS NOT NULL" : "WHERE p.name IS NULL";
  const [[total]] = (await read(`SELECT count(*) FROM persons p ${where}`)) as [[bigint]];
  const rows = await read(
    `${SUMMARY_SELECT} ${where}
     ORDER BY p.name IS NULL, lower(p.name), 4 DESC, p.id LIMIT ${Math.trunc(opts.limit ?? 1000)} OFFSET ${Math.trunc(opts.offset ?? 0)}`,
  );
  return { total: Number(total), persons: rows.map(toSummary) };
}

export async function getPerson(
  read: RowReader,
  id: number,
  opts: { limit?: number; offset?: number } = {},
): Promise<{ person: PersonSummary; faces: PersonFace[] }> {
  const person = await personSummary(read, id);
  const faces = await facesWhere(read, `f.person_id = ${idList([id])}`, opts);
  return { person, faces };
}

/** Every face of one image with the person it belongs to (the detail view, GET /api/faces?image=ID). */
export async function facesOfImage(read: RowReader, imageId: number): Promise<PersonFace[]> {
  // An image that is not in the index is not one without faces.
  if ((await read(`SELECT 1 FROM images WHERE id = ${idList([imageId])}`)).length === 0) throw new PersonsError("not-found", `no image ${imageId}`);
  if (!(await hasTable(read, "faces"))) return [];
  return facesWhere(read, `f.image_id = ${idList([imageId])}`, {});
}

/** Faces by id, in the order given (ids with no face are left out). */
export async function facesByIds(read: RowReader, ids: number[]): Promise<PersonFace[]> {
  if (ids.length === 0) return [];
  const found = new Map((await facesWhere(read, `f.id IN (${idList(ids)})`, {})).map((f) => [f.id, f]));
  return ids.flatMap((id) => found.get(id) ?? []);
}

/**
 * A person by id ("12") or name, written as naming stores it: any case, any runs of spaces, composed or decomposed
 * accents ("Zoë" typed on one system, pasted from a macOS file name on another).
 */
export async function resolvePerson(read: RowReader, ref: string): Promise<number> {
  if (!(await hasPersons(read))) throw new PersonsError("not-found", `no persons yet: run imgd faces cluster`);
  const wanted = cleanName(ref);
  if (/^\d+$/.test(wanted)) {
    const rows = await read(`SELECT id FROM persons WHERE id = ${idList([Number(wanted)])}`);
    if (rows.length > 0) return Number(rows[0]![0]);
  }
  const rows = await read(`SELECT id FROM persons WHERE ${SAME_NAME}`, [wanted]);
  if (rows.length === 0) throw new PersonsError("not-found", `no person "${wanted}"`);
  return Number(rows[0]![0]);
}

export async function createPerson(conn: DuckDBConnection, name: string | null): Promise<number> {
  await ensurePersonsTables(conn);
  const clean = name === null ? null : validName(name);
  if (clean !== null) await assertNameFree(readerOf(conn), clean, null);
  const rows = await readerOf(conn)("INSERT INTO persons (name) VALUES ($1) RETURNING id", [clean]);
  await bumpGeneration(conn);
  return Number(rows[0]![0]);
}

export async function namePerson(conn: DuckDBConnection, id: number, name: string): Promise<PersonSummary> {
  const read = readerOf(conn);
  await personSummary(read, id);
  const clean = validName(name);
  await assertNameFree(read, clean, id);
  await conn.run(`UPDATE persons SET name = $1 WHERE id = ${idList([id])}`, [clean]);
  // A named person becomes a target for auto-assignment and suggestions.
  await bumpGeneration(conn);
  return personSummary(read, id);
}

/**
 * Moves every face of `sources` to `target` and deletes the sources. The target keeps its name; an unnamed target
 * takes the one name among the sources (two different names are a conflict: name the target first).
 */
export async function mergePersons(conn: DuckDBConnection, target: number, sources: number[]): Promise<PersonSummary> {
  const read = readerOf(conn);
  const from = [...new Set(sources)].filter((s) => s !== target);
  if (from.length === 0) throw new PersonsError("invalid", "merge needs at least one other person than the target");
  const into = await personSummary(read, target);
  const names: string[] = [];
  for (const s of from) {
    const p = await personSummary(read, s);
    if (p.name !== null) names.push(p.name);
  }
  if (into.name === null && new Set(names.map((n) => cleanName(n).toLowerCase())).size > 1) {
    throw new PersonsError("conflict", `cannot merge persons named ${names.map((n) => `"${n}"`).join(" and ")} into an unnamed one; name the target first`);
  }
  const list = idList(from);
  // The sources' clustered faces become the user's placement, as split's are: the next clustering would otherwise
  // give an unnamed target's two clusters back two persons, undoing the merge.
  await conn.run(`UPDATE faces SET person_id = ${idList([target])},
      assigned_by = CASE WHEN assigned_by = 'cluster' THEN 'user' ELSE assigned_by END
    WHERE person_id IN (${list})`);
  // Suggestions for a source become the target's, unless the target already has one for that face.
  await conn.run(`DELETE FROM face_suggestions WHERE person_id IN (${list})
    AND face_id IN (SELECT face_id FROM face_suggestions WHERE person_id = ${idList([target])})`);
  await conn.run(`UPDATE face_suggestions SET person_id = ${idList([target])} WHERE person_id IN (${list})`);
  await conn.run(`DELETE FROM person_prototypes WHERE person_id IN (${list})`);
  await conn.run(`DELETE FROM persons WHERE id IN (${list})`);
  if (into.name === null && names.length > 0) {
    await conn.run(`UPDATE persons SET name = $1 WHERE id = ${idList([target])}`, [names[0]!]);
  }
  await refreshPersons(conn, [target]);
  return personSummary(read, target);
}

/**
 * Deletes a person (a wrong name, a cluster of strangers): its faces belong to nobody again and, no longer the user's
 * placement, are clustered and suggested anew; its name, prototypes and suggestions go with it.
 */
export async function deletePerson(conn: DuckDBConnection, id: number): Promise<{ deleted: PersonSummary }> {
  const deleted = await personSummary(readerOf(conn), id);
  const p = idList([id]);
  await conn.run(`UPDATE faces SET person_id = NULL, assigned_by = NULL WHERE person_id = ${p}`);
  await conn.run(`DELETE FROM face_suggestions WHERE person_id = ${p}`);
  await conn.run(`DELETE FROM person_prototypes WHERE person_id = ${p}`);
  await conn.run(`DELETE FROM persons WHERE id = ${p}`);
  await bumpGeneration(conn);
  return { deleted };
}

/** Moves `faceIds` (all of them `personId`'s) to a new person, named or not. */
export async function splitPerson(
  conn: DuckDBConnection,
  personId: number,
  faceIds: number[],
  name: string | null = null,
): Promise<{ from: PersonSummary; to: PersonSummary }> {
  const read = readerOf(conn);
  const from = await personSummary(read, personId);
  const ids = [...new Set(faceIds)];
  if (ids.length === 0) throw new PersonsError("invalid", "split needs the ids of the faces to move");
  const owned = await read(`SELECT id FROM faces WHERE person_id = ${idList([personId])} AND id IN (${idList(ids)})`);
  if (owned.length !== ids.length) {
    const mine = new Set(owned.map((r) => Number(r[0])));
    const other = ids.filter((f) => !mine.has(f));
    throw new PersonsError("invalid", `faces ${other.join(", ")} do not belong to person ${personId}`);
  }
  // An unnamed person left with no face would be deleted (as assign does): such a split only renumbers the cluster.
  if (from.name === null && ids.length === from.faces) {
    throw new PersonsError("invalid", `those are all of person ${personId}'s faces: a split leaves some behind (to name them all: imgd persons name ${personId} NAME)`);
  }
  const created = await createPerson(conn, name);
  await moveFaces(conn, ids, created);
  await refreshPersons(conn, [personId, created]);
  return { from: await personSummary(read, personId), to: await personSummary(read, created) };
}

/**
 * The user says these faces are `personId` (or nobody, with null). Their suggestions are settled: the one for this
 * person counts as accepted, the others are dropped. Returns the persons whose faces changed.
 */
export async function assignFaces(conn: DuckDBConnection, faceIds: number[], personId: number | null): Promise<{ assigned: number; persons: number[] }> {
  await ensurePersonsTables(conn);
  const read = readerOf(conn);
  const ids = [...new Set(faceIds)];
  if (ids.length === 0) throw new PersonsError("invalid", "no face ids given");
  const found = await read(`SELECT id, person_id FROM faces WHERE id IN (${idList(ids)})`);
  if (found.length !== ids.length) {
    const known = new Set(found.map((r) => Number(r[0])));
    throw new PersonsError("not-found", `no face ${ids.filter((f) => !known.has(f)).join(", ")}`);
  }
  if (personId !== null) await personSummary(read, personId);
  const touched = new Set<number>(found.flatMap((r) => (r[1] === null ? [] : [Number(r[1])])));
  if (personId !== null) touched.add(personId);
  await moveFaces(conn, ids, personId);
  // An unnamed person the user took every face from is nothing to show or keep, as one whose photos all left the
  // index; a named one keeps its name.
  const emptied = new Set(await deleteEmptyUnnamedPersons(conn, [...touched].filter((p) => p !== personId)));
  await refreshPersons(conn, [...touched].filter((p) => !emptied.has(p)));
  return { assigned: ids.length, persons: [...touched] };
}

async function moveFaces(conn: DuckDBConnection, faceIds: number[], personId: number | null): Promise<void> {
  const list = idList(faceIds);
  if (personId === null) {
    // Kept as the user's decision (no person, by 'user'), so neither clustering nor auto-assign puts it back.
    await conn.run(`UPDATE faces SET person_id = NULL, assigned_by = 'user' WHERE id IN (${list})`);
    await conn.run(`DELETE FROM face_suggestions WHERE status = 'pending' AND face_id IN (${list})`);
    return;
  }
  const p = idList([personId]);
  await conn.run(`UPDATE faces SET person_id = ${p}, assigned_by = 'user' WHERE id IN (${list})`);
  await conn.run(`UPDATE face_suggestions SET status = 'accepted' WHERE status = 'pending' AND person_id = ${p} AND face_id IN (${list})`);
  await conn.run(`DELETE FROM face_suggestions WHERE status IN ('pending', 'no-match') AND face_id IN (${list})`);
}

async function personSummary(read: RowReader, id: number): Promise<PersonSummary> {
  if (!Number.isSafeInteger(id) || id < 1) throw new PersonsError("invalid", `not a person id: ${id}`);
  const rows = (await hasPersons(read)) ? await read(`${SUMMARY_SELECT} WHERE p.id = ${idList([id])}`) : [];
  if (!rows[0]) throw new PersonsError("not-found", `no person ${id}`);
  return toSummary(rows[0]);
}

const SUMMARY_SELECT = `SELECT p.id, p.name, strftime(p.created_at, '%Y-%m-%dT%H:%M:%SZ'),
  (SELECT count(*) FROM faces f WHERE f.person_id = p.id),
  (SELECT count(DISTINCT f.image_id) FROM faces f WHERE f.person_id = p.id),
  (SELECT count(*) FROM person_prototypes pp WHERE pp.person_id = p.id),
  (SELECT count(*) FROM face_suggestions s JOIN faces f ON f.id = s.face_id AND f.person_id IS NULL
     WHERE s.person_id = p.id AND s.status = 'pending'),
  (SELECT f.id FROM faces f WHERE f.person_id = p.id ORDER BY f.score DESC, f.id LIMIT 1)
  FROM persons p`;

function toSummary(r: DuckDBValue[]): PersonSummary {
  return {
    id: Number(r[0]),
    name: r[1] as string | null,
    createdAt: r[2] as string,
    faces: Number(r[3]),
    images: Number(r[4]),
    prototypes: Number(r[5]),
    pendingSuggestions: Number(r[6]),
    coverFaceId: r[7] === null ? null : Number(r[7]),
  };
}

async function facesWhere(read: RowReader, where: string, opts: { limit?: number; offset?: number }): Promise<PersonFace[]> {
  const named = await hasTable(read, "persons");
  const rows = await read(
    `SELECT f.id, f.image_id, i.path, f.x0, f.y0, f.x1, f.y1, f.score, f.person_id, ${named ? "p.name" : "NULL"},
       f.assigned_by, f.cluster_id, i.width, i.height
     FROM faces f JOIN images i ON i.id = f.image_id ${named ? "LEFT JOIN persons p ON p.id = f.person_id" : ""}
     WHERE ${where} ORDER BY f.image_id, f.x0, f.id
     LIMIT ${Math.trunc(opts.limit ?? 10_000)} OFFSET ${Math.trunc(opts.offset ?? 0)}`,
  );
  return rows.map((r) => ({
    id: Number(r[0]),
    imageId: Number(r[1]),
    path: r[2] as string,
    box: [Number(r[3]), Number(r[4]), Number(r[5]), Number(r[6])],
    score: Number(r[7]),
    personId: r[8] === null ? null : Number(r[8]),
    person: (r[9] as string | null) ?? null,
    assignedBy: (r[10] as string | null) ?? null,
    clusterId: r[11] === null ? null : Number(r[11]),
    imageWidth: r[12] === null ? null : Number(r[12]),
    imageHeight: r[13] === null ? null : Number(r[13]),
  }));
}

/** A name as it is stored and looked up: trimmed, one space between words, accents composed (NFC). */
function cleanName(name: string): string {
  return name.trim().replace(/\s+/g, " ").normalize("NFC");
}

/** A stored name equal to $1 (a cleaned name) ignoring case; nfc_normalize matches one stored decomposed. */
const SAME_NAME = "lower(nfc_normalize(name)) = lower($1)";

function validName(name: string): string {
  const clean = cleanName(name);
  if (clean.length === 0) throw new PersonsError("invalid", "a person's name cannot be empty");
  if (clean.length > MAX_NAME) throw new PersonsError("invalid", `a person's name is at most ${MAX_NAME} characters`);
  if (/^\d+$/.test(clean)) throw new PersonsError("invalid", `"${clean}" would read as a person id; add a letter`);
  // A NUL or an escape sequence in a name would be printed as it is by imgd persons list, into the user's terminal.
  if (/\p{Cc}/u.test(clean)) throw new PersonsError("invalid", "a person's name cannot hold control characters");
  return clean;
}

async function assertNameFree(read: RowReader, name: string, self: number | null): Promise<void> {
  const rows = await read(`SELECT id FROM persons WHERE ${SAME_NAME}`, [name]);
  const other = rows.map((r) => Number(r[0])).find((id) => id !== self);
  if (other !== undefined) {
    throw new PersonsError("conflict", `"${name}" is already person ${other}; merge them with imgd persons merge ${other} ${self ?? "ID"}`, {
      what: "name-taken",
      name,
      holder: other,
      self,
    });
  }
}
