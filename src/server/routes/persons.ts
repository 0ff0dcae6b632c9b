// Persons and faces over HTTP: list and show persons, name/merge/split/assign, suggestions, and the faces of one
// image. Reads go through the store's catalog reader; every edit is one catalog write transaction.
import type { DuckDBConnection } from "@duckdb/node-api";
import { Hono, type Context } from "hono";
import { z } from "zod";
import { FacesIndex, similarFaceIds } from "../../engine/faces/faces-index.ts";
import {
  assignFaces,
  createPerson,
  deletePerson,
  facesByIds,
  facesOfImage,
  getPerson,
  listPersons,
  mergePersons,
  namePerson,
  splitPerson,
  type PersonFace,
  type PersonSummary,
} from "../../engine/faces/persons.ts";
import { PersonsError, readerOf, type RowReader } from "../../engine/faces/persons-table.ts";
import { computeSuggestions, personSuggestions, rejectSuggestions } from "../../engine/faces/suggestions.ts";
import type { AppDeps } from "../app-deps.ts";
import { timed, type AppEnv } from "../app-env.ts";
import { inApiTerms } from "../api-wording.ts";
import { httpError, parseInput } from "../http-error.ts";
import { decimal } from "../schemas.ts";

const id = decimal(z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER));
export const PersonIdParam = z.object({ id });
const faceIds = z.array(z.number().int().min(1).max(Number.MAX_SAFE_INTEGER)).min(1).max(10_000);
const personName = z.string().trim().min(1).max(200);

export const PersonsQuery = z.object({
  named: z.enum(["true", "false"]).optional().meta({ description: "only named (true) or only unnamed (false) persons" }),
  limit: decimal(z.coerce.number().int().min(1).max(10_000).default(200)),
  offset: decimal(z.coerce.number().int().min(0).default(0)),
});
export const PersonFacesQuery = z.object({
  limit: decimal(z.coerce.number().int().min(1).max(10_000).default(500)),
  offset: decimal(z.coerce.number().int().min(0).default(0)),
});
export const FacesQuery = z.object({ image: id.meta({ description: "image id" }) });
export const SimilarFacesQuery = z.object({ k: decimal(z.coerce.number().int().min(1).max(1000).default(20)) });
export const CreatePersonBody = z.object({ name: personName.nullable().default(null) });
export const NameBody = z.object({ name: personName });
export const MergeBody = z.object({ sources: z.array(id).min(1).max(1000).meta({ description: "persons merged into this one" }) });
export const SplitBody = z.object({ face_ids: faceIds, name: personName.optional() });
export const FaceIdsBody = z.object({ face_ids: faceIds });
export const UnassignBody = z.object({ face_ids: faceIds });
export const SuggestBody = z.object({ threshold: z.number().gt(-1).max(1).optional() });

export const Person = z.object({
  id: z.number().int(),
  name: z.string().nullable(),
  faces: z.number().int(),
  images: z.number().int(),
  prototypes: z.number().int(),
  pending_suggestions: z.number().int(),
  created_at: z.string(),
  cover_face_id: z.number().int().nullable(),
});
export const Face = z.object({
  id: z.number().int(),
  image_id: z.number().int(),
  path: z.string(),
  thumb: z.string(),
  box: z.array(z.number()).meta({ description: "x0, y0, x1, y1 in source-image pixels" }),
  image_width: z.number().int().nullable().meta({ description: "the source image's width in pixels, the space of box" }),
  image_height: z.number().int().nullable(),
  score: z.number(),
  person_id: z.number().int().nullable(),
  person: z.string().nullable(),
  assigned_by: z.enum(["auto", "user", "cluster"]).nullable(),
  cluster_id: z.number().int().nullable(),
});
export const PersonsResponse = z.object({
  total: z.number().int(),
  persons: z.array(Person.extend({ cover: Face.nullable().meta({ description: "the face cover_face_id names, to show for the person" }) })),
});
export const PersonResponse = z.object({ person: Person, faces: z.array(Face) });
export const FacesResponse = z.object({ image: z.number().int(), faces: z.array(Face) });
export const SimilarFacesResponse = z.object({
  face: z.number().int(),
  faces: z.array(Face.extend({ similarity: z.number().meta({ description: "cosine to the query face" }) })),
});
export const SplitResponse = z.object({ from: Person, to: Person });
export const DeleteResponse = z.object({ deleted: Person });
export const AssignResponse = z.object({ assigned: z.number().int(), persons: z.array(z.number().int()) });
export const SuggestionsResponse = z.object({
  person: z.number().int(),
  suggestions: z.array(Face.pick({ image_id: true, path: true, thumb: true, box: true, image_width: true, image_height: true, score: true }).extend({ face_id: z.number().int() })),
});
export const RejectResponse = z.object({ rejected: z.number().int() });
export const SuggestResponse = z.object({
  threshold: z.number(),
  suggested: z.number().int(),
  searches: z.number().int(),
  persons: z.object({ total: z.number().int(), searched: z.number().int(), skipped_unnamed: z.number().int(), skipped_no_prototypes: z.number().int() }),
  faces: z.object({ unassigned: z.number().int(), searched: z.number().int(), skipped_pending: z.number().int(), skipped_checked: z.number().int() }),
  comparisons: z.object({ naive: z.number().int(), done: z.number().int(), saved_pct: z.number() }).meta({ description: "face × person comparisons: one job per person over all unassigned faces, against this pass" }),
  by_person: z.array(z.object({ person_id: z.number().int(), name: z.string(), suggested: z.number().int() })),
  ms: z.number(),
});

const STATUS = { "not-found": 404, conflict: 409, invalid: 400 } as const;

/** Engine refusals become 4xx with the engine's reason; anything else stays a 500. */
async function engine<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (error) {
    if (error instanceof PersonsError) throw httpError(STATUS[error.kind], inApiTerms(error));
    throw error;
  }
}

/** One catalog write transaction running `work`, its result returned. */
function writer(deps: AppDeps) {
  return <T>(work: (conn: DuckDBConnection) => Promise<T>): Promise<T> =>
    engine(async () => {
      let out: T | undefined;
      await deps.store.writeRows(async (conn) => void (out = await work(conn)));
      return out as T;
    });
}

/** A JSON body validated by `schema`; an empty body counts as `{}`. */
async function jsonBody<S extends z.ZodType>(c: Context<AppEnv>, schema: S): Promise<z.output<S>> {
  const raw = await c.req.text();
  let value: unknown = {};
  if (raw.trim() !== "") {
    try {
      value = JSON.parse(raw);
    } catch {
      throw httpError(400, "the body must be JSON");
    }
  }
  return parseInput(schema, value);
}

export function personRoutes(deps: AppDeps) {
  const read: RowReader = (sql, params) => deps.store.read(sql, params);
  const write = writer(deps);
  const params = (c: Context<AppEnv>) => parseInput(PersonIdParam, { id: c.req.param("id") }).id;
  const body = jsonBody;

  return new Hono<AppEnv>()
    .get("/", async (c) => {
      const q = parseInput(PersonsQuery, c.req.query());
      const named = q.named === undefined ? undefined : q.named === "true";
      const listed = await engine(() => listPersons(read, { named, limit: q.limit, offset: q.offset }));
      const covers = new Map((await facesByIds(read, listed.persons.flatMap((p) => p.coverFaceId ?? []))).map((f) => [f.id, toFace(f)]));
      return c.json({ total: listed.total, persons: listed.persons.map((p) => ({ ...toPerson(p), cover: covers.get(p.coverFaceId!) ?? null })) });
    })
    .post("/", async (c) => {
      const b = await body(c, CreatePersonBody);
      const created = await write(async (conn) => getPerson(readerOf(conn), await createPerson(conn, b.name)));
      return c.json(toPerson(created.person), 201);
    })
    .get("/:id", async (c) => {
      const q = parseInput(PersonFacesQuery, c.req.query());
      const { person, faces } = await engine(() => getPerson(read, params(c), q));
      return c.json({ person: toPerson(person), faces: faces.map(toFace) });
    })
    .delete("/:id", async (c) => {
      const personId = params(c);
      const { deleted } = await write((conn) => deletePerson(conn, personId));
      return c.json({ deleted: toPerson(deleted) });
    })
    .post("/:id/name", async (c) => {
      const personId = params(c);
      const b = await body(c, NameBody);
      return c.json(toPerson(await write((conn) => namePerson(conn, personId, b.name))));
    })
    .post("/:id/merge", async (c) => {
      const personId = params(c);
      const b = await body(c, MergeBody);
      return c.json(toPerson(await write((conn) => mergePersons(conn, personId, b.sources))));
    })
    .post("/:id/split", async (c) => {
      const personId = params(c);
      const b = await body(c, SplitBody);
      const { from, to } = await write((conn) => splitPerson(conn, personId, b.face_ids, b.name ?? null));
      return c.json({ from: toPerson(from), to: toPerson(to) }, 201);
    })
    .post("/:id/assign", async (c) => {
      const personId = params(c);
      const b = await body(c, FaceIdsBody);
      return c.json(await write((conn) => assignFaces(conn, b.face_ids, personId)));
    })
    .get("/:id/suggestions", async (c) => {
      const personId = params(c);
      const q = parseInput(PersonFacesQuery, c.req.query());
      const list = await engine(async () => {
        await getPerson(read, personId, { limit: 1 }); // 404 for an unknown person rather than an empty list
        return (await personSuggestions(read, personId, q.offset + q.limit)).slice(q.offset);
      });
      return c.json({
        person: personId,
        suggestions: list.map((s) => ({
          face_id: s.faceId,
          image_id: s.imageId,
          path: s.path,
          thumb: thumb(s.imageId),
          box: s.box,
          image_width: s.imageWidth,
          image_height: s.imageHeight,
          score: s.score,
        })),
      });
    })
    .post("/:id/reject", async (c) => {
      const personId = params(c);
      const b = await body(c, FaceIdsBody);
      return c.json({ rejected: await write((conn) => rejectSuggestions(conn, personId, b.face_ids)) });
    });
}

export function faceRoutes(deps: AppDeps) {
  const read: RowReader = (sql, params) => deps.store.read(sql, params);
  const write = writer(deps);
  // One faces index per server, brought up to date before each use; requests queue so only one repairs it.
  let facesIndex: Promise<FacesIndex | null> = Promise.resolve(null);
  const currentFacesIndex = () =>
    (facesIndex = facesIndex
      .catch(() => null)
      .then(async (ix) => (ix ? ix.current(read, deps.store.dir) : (await FacesIndex.open(read, deps.store.dir)).index))) as Promise<FacesIndex>;
  return new Hono<AppEnv>()
    .get("/:id/similar", async (c) => {
      const faceId = parseInput(PersonIdParam, { id: c.req.param("id") }).id;
      const q = parseInput(SimilarFacesQuery, c.req.query());
      const index = await timed(c, "faces_index", currentFacesIndex);
      const matches = await timed(c, "search", () => engine(() => similarFaceIds(read, index, faceId, q.k)));
      const faces = await facesByIds(read, matches.map((m) => m.faceId));
      const score = new Map(matches.map((m) => [m.faceId, m.score]));
      return c.json({ face: faceId, faces: faces.map((f) => ({ ...toFace(f), similarity: score.get(f.id)! })) });
    })
    .get("/", async (c) => {
      const q = parseInput(FacesQuery, c.req.query());
      const faces = await engine(() => facesOfImage(read, q.image));
      return c.json({ image: q.image, faces: faces.map(toFace) });
    })
    .post("/unassign", async (c) => {
      const b = await jsonBody(c, UnassignBody);
      return c.json(await write((conn) => assignFaces(conn, b.face_ids, null)));
    })
    .post("/suggestions", async (c) => {
      const b = await jsonBody(c, SuggestBody);
      const r = await timed(c, "suggest", () => write((conn) => computeSuggestions(conn, { threshold: b.threshold })));
      c.get("logFields").suggestions = { suggested: r.suggested, searched: r.faces.searched, saved_pct: r.comparisons.savedPct };
      return c.json({
        threshold: r.threshold,
        suggested: r.suggested,
        searches: r.searches,
        persons: { total: r.persons.total, searched: r.persons.searched, skipped_unnamed: r.persons.skippedUnnamed, skipped_no_prototypes: r.persons.skippedNoPrototypes },
        faces: { unassigned: r.faces.unassigned, searched: r.faces.searched, skipped_pending: r.faces.skippedPending, skipped_checked: r.faces.skippedChecked },
        comparisons: { naive: r.comparisons.naive, done: r.comparisons.done, saved_pct: r.comparisons.savedPct },
        by_person: r.byPerson.map((p) => ({ person_id: p.personId, name: p.name, suggested: p.suggested })),
        ms: r.ms,
      });
    });
}

const thumb = (imageId: number) => `/api/images/${imageId}/thumb`;

function toPerson(p: PersonSummary): z.infer<typeof Person> {
  return {
    id: p.id,
    name: p.name,
    faces: p.faces,
    images: p.images,
    prototypes: p.prototypes,
    pending_suggestions: p.pendingSuggestions,
    created_at: p.createdAt,
    cover_face_id: p.coverFaceId,
  };
}

function toFace(f: PersonFace): z.infer<typeof Face> {
  return {
    id: f.id,
    image_id: f.imageId,
    path: f.path,
    thumb: thumb(f.imageId),
    box: f.box,
    image_width: f.imageWidth,
    image_height: f.imageHeight,
    score: f.score,
    person_id: f.personId,
    person: f.person,
    assigned_by: f.assignedBy as z.infer<typeof Face>["assigned_by"],
    cluster_id: f.clusterId,
  };
}
