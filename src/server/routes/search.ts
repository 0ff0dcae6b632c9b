// GET /api/search?q=... (text) and POST /api/search (an uploaded image, or { image_id } for "more like this").
import { Hono, type Context } from "hono";
import type { RowReader } from "../../engine/faces/persons-table.ts";
import { prepareImage } from "../../engine/prepare-image.ts";
import { explainMissingStage, MissingStageError, stageClauses } from "../../engine/query-filters.ts";
import type { SearchHit } from "../../engine/store/index-store.ts";
import type { AppDeps } from "../app-deps.ts";
import { timed, type AppEnv } from "../app-env.ts";
import { inApiTerms } from "../api-wording.ts";
import { httpError, parseInput } from "../http-error.ts";
import { bodyKind, readJson, readMultipart } from "../request-body.ts";
import { SearchFilters, SimilarSearchBody, TextSearchQuery } from "../schemas.ts";
import type { z } from "zod";

export function hitJson(h: SearchHit) {
  return {
    id: h.id,
    path: h.path,
    score: h.score,
    width: h.width,
    height: h.height,
    taken_at: h.takenAt,
    camera_make: h.cameraMake,
    camera_model: h.cameraModel,
    size: h.size,
  };
}

export function searchRoutes(deps: AppDeps) {
  const search = async (c: Context<AppEnv>, vector: Float32Array | null, f: z.output<typeof SearchFilters>, excludeId?: number) => {
    const read: RowReader = (sql, params) => deps.store.read(sql, params);
    const where = await stageClauses({ has: f.has, textIn: f.text_in, person: f.person }, read).catch((e) => {
      throw httpError(400, inApiTerms(e));
    });
    const opts = {
      offset: f.offset,
      pathPrefix: f.path_prefix,
      takenAfter: f.after,
      takenBefore: f.before,
      where,
      excludeIds: excludeId ? [excludeId] : undefined,
    };
    const hits = await timed(c, "search", () =>
      (vector ? deps.store.search(vector, f.k, opts) : deps.store.browse(f.k, opts)).catch((e) => {
        const explained = explainMissingStage(e);
        throw explained instanceof MissingStageError ? httpError(400, inApiTerms(explained)) : e;
      }),
    );
    c.get("logFields").hits = hits.length;
    return c.json({ hits: hits.map(hitJson), timings: c.get("timings") });
  };

  return new Hono<AppEnv>()
    .get("/", async (c) => {
      const q = parseInput(TextSearchQuery, queryParams(c));
      const vector = q.q ? await timed(c, "embed", () => deps.queries.embedText(q.q!)) : null;
      return search(c, vector, q);
    })
    .post("/", async (c) => {
      if (bodyKind(c) === "json") {
        const body = parseInput(SimilarSearchBody, await readJson(c));
        const vector = await timed(c, "lookup", () => deps.store.getEmbedding(body.image_id));
        if (!vector) throw httpError(404, `image ${body.image_id} is not in the index`);
        return search(c, vector, body, body.image_id);
      }
      const { files, fields } = await timed(c, "upload", () => readMultipart(c, deps.limits.maxImageBytes));
      if (files.length !== 1) throw httpError(400, `send exactly one image file to search with, got ${files.length}`);
      // k, offset and filters may come in the URL too, as on GET; the form's own fields win.
      const filters = parseInput(SearchFilters, { ...queryParams(c), ...fields });
      const { pixels } = await timed(c, "decode", () =>
        prepareImage(files[0]!.bytes, deps.model.manifest.preprocess, deps.limits.maxPixels, files[0]!.name),
      );
      // Includes (re)opening the tower when this is the first image request in a while.
      const vector = await timed(c, "embed", () => deps.images.embed(pixels, 1));
      return search(c, vector, filters);
    });
}

/** The URL's parameters, each once (the first, as c.req.query gives it) except those that may be repeated. */
function queryParams(c: Context<AppEnv>): Record<string, string | string[]> {
  const params: Record<string, string | string[]> = c.req.query();
  for (const key of ["has", "person"]) {
    const values = c.req.queries(key);
    if (values) params[key] = values;
  }
  return params;
}
