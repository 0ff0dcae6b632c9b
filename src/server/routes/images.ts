// GET /api/images/:id (metadata), /:id/thumb (cached JPEG preview, strong ETag), /:id/file (the original, weak ETag).
import { Hono, type Context } from "hono";
import { imageAnalyses } from "../../engine/store/image-analyses.ts";
import { thumbnailSizeFor } from "../../engine/thumbnail.ts";
import { ImageError } from "../../engine/types.ts";
import type { AppDeps } from "../app-deps.ts";
import { timed, type AppEnv } from "../app-env.ts";
import { ifRangeHolds, parseByteRange } from "../byte-range.ts";
import { httpError, parseInput } from "../http-error.ts";
import { ImageIdParam, ThumbQuery } from "../schemas.ts";

export function imageRoutes(deps: AppDeps) {
  const indexedImage = async (c: Context<AppEnv>) => {
    const { id } = parseInput(ImageIdParam, { id: c.req.param("id") });
    const image = await timed(c, "lookup", () => deps.store.getImage(id));
    if (!image || image.status !== "indexed") throw httpError(404, `image ${id} is not in the index`);
    return image;
  };

  return new Hono<AppEnv>()
    .get("/:id", async (c) => {
      const image = await indexedImage(c);
      return c.json({
        id: image.id,
        path: image.path,
        width: image.width,
        height: image.height,
        taken_at: image.takenAt,
        camera_make: image.cameraMake,
        camera_model: image.cameraModel,
        size: image.size,
        imohash: image.imohash,
        // Objects, faces and recognised text, in source pixels (empty for stages this index never ran).
        analyses: await timed(c, "analyses", () => imageAnalyses(deps.store, image.id)),
      });
    })
    .get("/:id/thumb", async (c) => {
      const image = await indexedImage(c);
      const { size } = parseInput(ThumbQuery, c.req.query());
      const path = await deps.roots.resolveFile(image.path);
      if (!path || !image.imohash) throw httpError(404, `the file of image ${image.id} is not available`);
      const thumb = await timed(c, "thumbnail", () => deps.thumbnails.get(image.imohash!, thumbnailSizeFor(size), path)).catch((err) => {
        // The file changed on disk since it was indexed: there is no thumbnail to give, and it is not the client's doing.
        if (err instanceof ImageError) throw httpError(404, `the file of image ${image.id} no longer reads as an image: ${err.message}`);
        throw err;
      });
      c.get("logFields").thumbnail = thumb.source;
      c.header("ETag", thumb.etag);
      c.header("Cache-Control", "private, max-age=86400");
      if (ifNoneMatch(c.req.header("if-none-match"), thumb.etag)) return c.body(null, 304);
      return c.body(thumb.bytes as Uint8Array<ArrayBuffer>, 200, { "Content-Type": "image/jpeg" });
    })
    .get("/:id/file", async (c) => {
      const image = await indexedImage(c);
      const path = await deps.roots.resolveFile(image.path);
      if (!path) throw httpError(404, `the file of image ${image.id} is not under an indexed folder or no longer exists as a file`);
      const file = Bun.file(path);
      // Revalidated on every view (no-cache), answered 304 while the file keeps its size and modification time.
      const etag = `W/"${file.size.toString(16)}-${Math.trunc(file.lastModified).toString(16)}"`;
      const lastModified = new Date(file.lastModified).toUTCString();
      c.header("ETag", etag);
      c.header("Last-Modified", lastModified);
      c.header("Cache-Control", "private, no-cache");
      c.header("Accept-Ranges", "bytes");
      const ifNone = c.req.header("if-none-match");
      // If-Modified-Since counts only without If-None-Match (RFC 9110 13.1.3): `curl -z`, `wget -N`, caches.
      if (ifNone !== undefined ? ifNoneMatch(ifNone, etag) : notModifiedSince(c.req.header("if-modified-since"), file.lastModified)) {
        return c.body(null, 304);
      }
      // An original is shown, never run: no sniffing it into HTML, and no script or request from it if a browser
      // renders it.
      c.header("X-Content-Type-Options", "nosniff");
      c.header("Content-Security-Policy", "default-src 'none'; sandbox");
      const range = ifRangeHolds(c.req.header("if-range"), lastModified)
        ? parseByteRange(c.req.header("range"), file.size)
        : undefined;
      if (range === "unsatisfiable") return c.body(null, 416, { "Content-Range": `bytes */${file.size}` });
      // Type and length stated, not left to the body: HEAD is answered from this response without it.
      if (range) {
        return c.body(file.slice(range.start, range.end + 1), 206, {
          "Content-Type": file.type,
          "Content-Length": String(range.end + 1 - range.start),
          "Content-Range": `bytes ${range.start}-${range.end}/${file.size}`,
        });
      }
      return c.body(file, 200, { "Content-Type": file.type, "Content-Length": String(file.size) });
    });
}

/** If-None-Match compares weakly (RFC 9110 13.1.2): a cache may send our tag back as W/"...". */
function ifNoneMatch(header: string | undefined, etag: string): boolean {
  if (!header) return false;
  const opaque = (tag: string) => tag.trim().replace(/^W\//, "");
  return header.split(",").some((t) => t.trim() === "*" || opaque(t) === opaque(etag));
}

/** Whether a file last modified at `mtimeMs` is unchanged since an If-Modified-Since date (HTTP dates are whole seconds). */
function notModifiedSince(header: string | undefined, mtimeMs: number): boolean {
  const since = header === undefined ? NaN : Date.parse(header);
  return !Number.isNaN(since) && Math.trunc(mtimeMs / 1000) * 1000 <= since;
}
