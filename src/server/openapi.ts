// The OpenAPI 3.1 description of the server, built from the same zod schemas the routes validate with.
import { z } from "zod";
import { DEFAULT_LIMITS, type Limits } from "./app-deps.ts";
import {
  ErrorBody,
  Hit,
  ImageMetadata,
  IngestPathsBody,
  IngestResponse,
  SearchFilters,
  SearchResponse,
  SimilarSearchBody,
  TextSearchQuery,
  ThumbQuery,
} from "./schemas.ts";
import { DuplicatesQuery, DuplicatesResponse } from "./routes/duplicates.ts";
import { personsOpenApiPaths } from "./routes/persons-openapi.ts";

const json = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "input", target: "draft-2020-12" });
const out = (schema: z.ZodType) => z.toJSONSchema(schema, { io: "output", target: "draft-2020-12" });

function queryParameters(schema: z.ZodObject) {
  const s = json(schema) as { properties: Record<string, object>; required?: string[] };
  return Object.entries(s.properties).map(([name, prop]) => ({
    name,
    in: "query",
    required: s.required?.includes(name) ?? false,
    schema: prop,
    description: (prop as { description?: string }).description,
  }));
}

const idParam = { name: "id", in: "path", required: true, schema: { type: "integer", minimum: 1, maximum: Number.MAX_SAFE_INTEGER } };
const error = (description: string) => ({ description, content: { "application/json": { schema: out(ErrorBody) } } });
const ok = (schema: z.ZodType, description = "OK") => ({ description, content: { "application/json": { schema: out(schema) } } });
const apiErrors = {
  "400": error("Invalid input; `error` says which field and why (and `reason`, for an image that could not be read)."),
  "401": error("Missing or wrong bearer token (only when the server runs with --token)."),
  "403": error("A state-changing request from another site's page: its Origin is neither this server nor the one --cors allows."),
  "429": error("Too many requests in flight; retry after the Retry-After header."),
};

const mib = (bytes: number) => `${+(bytes / 2 ** 20).toFixed(1)} MiB`;

export function openApiDocument(version: string, limits: Limits = DEFAULT_LIMITS) {
  const perImage = `${mib(limits.maxImageBytes)} per image`;
  const uploadsBusy = `Uploads being received hold ${mib(limits.maxBufferedBytes)} together, the most the server takes; retry after Retry-After.`;
  const unsupportedType = error("Unsupported content type: send multipart/form-data or application/json.");
  const tooSlow = `The body arrived slower than ${Math.round(limits.minUploadBytesPerSecond / 1024)} KiB/s on average after its first ${limits.uploadGraceMs / 1000} s.`;
  return {
    openapi: "3.1.0",
    info: { title: "imgd", version, description: "Search an imgd photo index by text or image, and add images to it." },
    components: {
      schemas: { Hit: out(Hit), SearchResponse: out(SearchResponse), IngestResponse: out(IngestResponse) },
      securitySchemes: { bearer: { type: "http", scheme: "bearer", description: "Required for /api/* when the server runs with --token." } },
    },
    security: [{ bearer: [] }, {}],
    paths: {
      "/": { get: { summary: "The search page", security: [], responses: { "200": { description: "text/html" } } } },
      "/openapi.json": { get: { summary: "This document", security: [], responses: { "200": { description: "OpenAPI 3.1, JSON" } } } },
      "/health": { get: { summary: "Liveness", security: [], responses: { "200": ok(z.object({ status: z.literal("ok") }), "The process is serving.") } } },
      "/ready": {
        get: {
          summary: "Readiness: models loaded and warmed",
          security: [],
          responses: {
            "200": ok(z.object({ status: z.literal("ready"), model: z.string() }), "Ready for queries."),
            "503": ok(z.object({ status: z.literal("warming up"), error: z.string() }), "Still warming up."),
          },
        },
      },
      "/metrics": { get: { summary: "Prometheus metrics", security: [], responses: { "200": { description: "text/plain exposition format" } } } },
      "/api/search": {
        get: {
          summary: "Search by text",
          parameters: queryParameters(TextSearchQuery),
          responses: { "200": ok(SearchResponse), ...apiErrors },
        },
        post: {
          summary: "Search by image: an upload, or an indexed image's id (more like this)",
          description: `An upload is at most ${perImage}. With an upload, k, offset and the filters may also be given in the URL; the form's fields win.`,
          parameters: queryParameters(SearchFilters),
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": {
                schema: {
                  type: "object",
                  required: ["image"],
                  properties: { image: { type: "string", format: "binary" }, ...(json(SearchFilters) as { properties: object }).properties },
                },
              },
              "application/json": { schema: json(SimilarSearchBody) },
            },
          },
          responses: { "200": ok(SearchResponse), ...apiErrors, "404": error("image_id is not in the index."), "413": error(`The image is over the limit of ${perImage}.`), "408": error(tooSlow), "415": unsupportedType, "503": error(uploadsBusy) },
        },
      },
      "/api/images/{id}": {
        get: { summary: "Metadata of one indexed image", parameters: [idParam], responses: { "200": ok(ImageMetadata), ...apiErrors, "404": error("Unknown id.") } },
      },
      "/api/images/{id}/thumb": {
        get: {
          summary: "JPEG thumbnail (strong ETag; send If-None-Match for a 304)",
          parameters: [idParam, ...queryParameters(ThumbQuery)],
          responses: {
            "200": { description: "image/jpeg", content: { "image/jpeg": { schema: { type: "string", format: "binary" } } } },
            "304": { description: "Not modified." },
            ...apiErrors,
            "404": error("Unknown id, or the file is gone or no longer reads as an image."),
          },
        },
      },
      "/api/images/{id}/file": {
        get: {
          summary: "The original file (only under an indexed folder)",
          description:
            "Sent with X-Content-Type-Options: nosniff and a sandboxing Content-Security-Policy; HEAD gives its type and length. A weak ETag (size and modification time) and Last-Modified come with it; send If-None-Match for a 304. A single byte range (Range: bytes=...) is answered with 206.",
          parameters: [idParam],
          responses: {
            "200": { description: "The file's bytes." },
            "206": { description: "The requested byte range, with Content-Range." },
            "304": { description: "Unchanged since the ETag sent." },
            ...apiErrors,
            "404": error("Unknown id, or the file is gone or outside the indexed folders."),
            "416": { description: "The range lies past the end of the file; Content-Range gives its length." },
          },
        },
      },
      "/api/ingest": {
        post: {
          summary: "Add images to the index: uploads (multipart, any number of files) or paths on the server",
          description: `At most ${limits.maxIngestFiles} images and ${mib(limits.maxIngestBytes)} per request, ${perImage}: a larger image is listed in \`errors\` (reason too-large) and the others are indexed.`,
          requestBody: {
            required: true,
            content: {
              "multipart/form-data": { schema: { type: "object", properties: { files: { type: "array", items: { type: "string", format: "binary" } } } } },
              "application/json": { schema: json(IngestPathsBody) },
            },
          },
          responses: {
            "200": ok(IngestResponse),
            ...apiErrors,
            "408": error(tooSlow),
            "413": error(`Over ${mib(limits.maxIngestBytes)} or ${limits.maxIngestFiles} images in the request.`),
            "415": unsupportedType,
            "422": ok(IngestResponse, "No image could be indexed; `error` says so and `errors` why, per image."),
            "503": error(`The analysis stages' models could not be opened (\`error\` says why), or: ${uploadsBusy}`),
          },
        },
      },
      "/api/duplicates": {
        get: {
          summary: "Exact duplicates (imohash confirmed by sha256) and near-duplicate groups (cosine >= near), largest first",
          parameters: queryParameters(DuplicatesQuery),
          responses: { "200": ok(DuplicatesResponse), ...apiErrors },
        },
      },
      ...personsOpenApiPaths({ json, queryParameters, ok, error, apiErrors, idParam }),
    },
  };
}
