// What each endpoint accepts, as zod schemas: the routes validate with them and /openapi.json is derived from them,
// so the document cannot drift from the checks.
import { z } from "zod";
import { localTime } from "../engine/store/catalog.ts";

export const MAX_K = 1000;
export const MAX_OFFSET = 10_000;
/** The longest q a search takes, in UTF-16 code units after trimming (CLIP reads only its first 77 tokens anyway). */
export const MAX_QUERY_CHARS = 1000;

/**
 * An integer from a path, query string or form field, in decimal digits (leading zeros allowed): the coercion alone
 * is Number(), which also reads "0x1", "1e0", " 1" and "", and in a JSON body true and [7]. Numbers in a JSON body
 * pass through to `inner`.
 */
export function decimal<S extends z.ZodType>(inner: S) {
  return z.preprocess((value, ctx) => {
    const digits = typeof value === "string" ? /^\d+$/.test(value) : typeof value === "number" || value === undefined;
    if (!digits) ctx.addIssue({ code: "custom", message: "must be a whole number in decimal digits", input: value });
    return value;
  }, inner);
}

// Checked with the filter's own parser: a value it cannot read would silently filter nothing.
const date = z
  .string()
  .max(40)
  .refine((s) => localTime(s) !== null, "must be a date like 2024-06-01 or a date-time like 2024-06-01T18:30:00")
  .meta({ description: "ISO-8601 date or date-time, compared as wall-clock time (EXIF dates carry no zone)", example: "2024-06-01" });

export const SearchFilters = z.object({
  k: decimal(z.coerce.number().int().min(1).max(MAX_K).default(20)).meta({ description: "number of results" }),
  offset: decimal(z.coerce.number().int().min(0).max(MAX_OFFSET).default(0)).meta({ description: "results to skip (paging)" }),
  after: date.optional().meta({ description: "only photos taken on or after this date" }),
  before: date.optional().meta({ description: "only photos taken before this date" }),
  path_prefix: z.string().min(1).max(4096).optional().meta({ description: "only photos whose path starts with this" }),
  has: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().max(64)).max(16))
    .optional()
    .meta({ description: "object labels that must all be in the photo (COCO names; repeat or comma-separate)" }),
  text_in: z.string().trim().min(1).max(200).optional().meta({ description: "words that must all be in the photo's recognised text" }),
  person: z
    .union([z.string(), z.array(z.string())])
    .transform((v) => (Array.isArray(v) ? v : [v]).map((s) => s.trim()).filter(Boolean))
    .pipe(z.array(z.string().max(200)).max(8))
    .optional()
    .meta({ description: "persons (names or ids) who must all be in the photo (repeat for several); one nobody has is a 400" }),
});

/** Without q, the filters alone list the photos that pass them (needs at least one filter). */
export const TextSearchQuery = SearchFilters.extend({
  q: z.string().trim().min(1, "q must not be empty").max(MAX_QUERY_CHARS).optional().meta({ description: "what to look for, in words" }),
}).refine((f) => f.q || f.has?.length || f.text_in || f.person?.length || f.path_prefix || f.after || f.before, {
  message: "give q (words to look for) or at least one filter (has, text_in, person, path_prefix, after, before)",
  path: ["q"],
});

export const SimilarSearchBody = SearchFilters.extend({
  image_id: decimal(z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER)).meta({ description: "find photos like this indexed image" }),
});

export const ImageIdParam = z.object({ id: decimal(z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER)) });

export const ThumbQuery = z.object({
  size: decimal(z.coerce.number().int().min(16).max(1024).default(256)).meta({ description: "longest side in pixels (snapped up to 128/256/512/1024)" }),
});

export const IngestPathsBody = z.object({
  paths: z.array(z.string().min(1).max(4096)).min(1).max(1000).meta({ description: "absolute paths of files on the server's disk, under an allowed root" }),
});

export const Hit = z.object({
  id: z.number().int(),
  path: z.string(),
  score: z.number(),
  width: z.number().int().nullable(),
  height: z.number().int().nullable(),
  taken_at: z.string().nullable(),
  camera_make: z.string().nullable(),
  camera_model: z.string().nullable(),
  size: z.number().int(),
});

export const SearchResponse = z.object({
  hits: z.array(Hit),
  timings: z.record(z.string(), z.number()).meta({ description: "milliseconds per stage" }),
});

const box = z.array(z.number()).meta({ description: "x0, y0, x1, y1 in source-image pixels" });

export const ImageAnalyses = z
  .object({
    objects: z.array(z.object({ label: z.string(), score: z.number(), box })),
    faces: z.array(z.object({ id: z.number().int(), score: z.number(), box, person: z.string().nullable(), personId: z.number().int().nullable() })),
    text: z.array(
      z.object({ text: z.string(), score: z.number(), box: z.array(z.number()).meta({ description: "the line's quadrilateral: x0,y0, x1,y1, x2,y2, x3,y3" }) }),
    ),
  })
  .meta({ description: "objects, faces and recognised text, in source pixels (empty for stages this index never ran)" });

export const ImageMetadata = Hit.omit({ score: true }).extend({ imohash: z.string().nullable(), analyses: ImageAnalyses });

export const IngestResponse = z.object({
  error: z.string().optional().meta({ description: "only when no image could be indexed (the 422)" }),
  status: z.enum(["ok", "partial", "failed"]),
  total: z.number().int(),
  processed: z.number().int(),
  duplicates: z.number().int(),
  duplicate_of: z
    .array(z.object({ name: z.string(), id: z.number().int() }))
    .meta({ description: "each exact duplicate and the indexed image holding its content (indexed before, or by this request)" }),
  errors_count: z.number().int(),
  errors: z.array(z.object({ name: z.string(), reason: z.string(), error: z.string() })),
  ids: z.array(z.number().int()),
  indexed: z.object({ global: z.number().int(), vehicles: z.number().int(), people: z.number().int(), faces: z.number().int(), ocr: z.number().int() }),
  near_duplicates: z.number().int(),
  total_time_ms: z.number(),
});

export const ErrorBody = z.object({
  error: z.string(),
  reason: z
    .string()
    .optional()
    .meta({ description: "why an uploaded image could not be read: not-an-image, empty-file, corrupt, truncated, too-many-pixels, unreadable" }),
});
