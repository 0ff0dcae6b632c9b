// POST /api/ingest: several uploaded images (multipart) or { paths } on the server's disk, added to the index.
import { isAbsolute } from "node:path";
import { Hono } from "hono";
import type { IngestItem } from "../../engine/ingest.ts";
import { NotRegularFile, openRegularFile } from "../../engine/regular-file.ts";
import type { AppDeps } from "../app-deps.ts";
import { timed, type AppEnv } from "../app-env.ts";
import { httpError, parseInput } from "../http-error.ts";
import { bodyKind, readJson, readMultipart, tooLargeError, type RefusedUpload } from "../request-body.ts";
import { IngestPathsBody } from "../schemas.ts";

export function ingestRoutes(deps: AppDeps) {
  const fromPaths = async (paths: string[]): Promise<{ items: IngestItem[]; refused: RefusedUpload[] }> => {
    const items: IngestItem[] = [];
    const refused: RefusedUpload[] = [];
    for (const p of paths) {
      // Against what the server's working directory happens to be, a relative path names some other file.
      if (!isAbsolute(p)) {
        refused.push({ name: p, reason: "not-absolute", error: `${p}: give the absolute path on the server` });
        continue;
      }
      const real = await deps.roots.resolve(p);
      if (!real) {
        if (await deps.roots.isMissingUnderRoot(p)) refused.push({ name: p, reason: "not-found", error: `${p}: no such file` });
        else refused.push({ name: p, reason: "outside-roots", error: `${p}: not an existing file under an allowed root` });
        continue;
      }
      const read = await readRegularFile(real, deps.limits.maxImageBytes);
      if ("bytes" in read) items.push({ name: p, path: real, ...read });
      else if (read.why === "gone") refused.push({ name: p, reason: "not-found", error: `${p}: no such file` });
      else if (read.why === "not-a-file") refused.push({ name: p, reason: "not-a-file", error: `${p}: not a regular file` });
      else refused.push({ name: p, reason: "too-large", error: tooLargeError(p, read.size, deps.limits.maxImageBytes) });
    }
    return { items, refused };
  };

  return new Hono<AppEnv>().post("/", async (c) => {
    const t0 = performance.now();
    let items: IngestItem[];
    let refused: RefusedUpload[];
    if (bodyKind(c) === "json") {
      const body = parseInput(IngestPathsBody, await readJson(c));
      ({ items, refused } = await timed(c, "read", () => fromPaths(body.paths)));
    } else {
      ({ files: items, refused } = await timed(c, "upload", () => readMultipart(c, deps.limits.maxImageBytes, "set-aside")));
    }
    const total = items.length + refused.length;
    if (total === 0) throw httpError(400, "no images in the request");
    if (total > deps.limits.maxIngestFiles) throw httpError(413, `${total} images in one request; the limit is ${deps.limits.maxIngestFiles}`);

    // Opening the analysis stages' models (on the first ingest) failing is the server's state, not this request's
    // fault: 503 with the reason, and the next request tries again.
    const ingestor = await timed(c, "load", () => deps.ingestor.get()).catch((err) => {
      throw httpError(503, `cannot open the analysis models: ${err instanceof Error ? err.message : String(err)}`);
    });
    const report = await ingestor.ingest(items);
    Object.assign(c.get("timings"), report.stages);
    const errors = [...refused, ...report.errors];
    c.get("logFields").ingest = {
      total,
      processed: report.processed,
      duplicates: report.duplicates,
      near_duplicates: report.nearDuplicates,
      found: report.found,
      errors: errors.length,
    };
    const status = errors.length === 0 ? "ok" : report.processed + report.duplicates > 0 ? "partial" : "failed";
    return c.json({
      ...(status === "failed" ? { error: `none of the ${total} images could be indexed` } : {}),
      status,
      total,
      processed: report.processed,
      duplicates: report.duplicates,
      duplicate_of: report.duplicateOf,
      errors_count: errors.length,
      errors,
      ids: report.ids,
      indexed: {
        global: report.processed,
        vehicles: report.found.vehicles ?? 0,
        people: report.found.people ?? 0,
        faces: report.found.faces ?? 0,
        ocr: report.found.ocr ?? 0,
      },
      near_duplicates: report.nearDuplicates,
      total_time_ms: +(performance.now() - t0).toFixed(1),
    }, status === "failed" ? 422 : 200);
  });
}

type FileRead = { bytes: Buffer; mtimeMs: number } | { why: "gone" } | { why: "not-a-file" } | { why: "too-large"; size: number };

/** Read through one descriptor (see openRegularFile): a path that changed since it was resolved is refused, not a 500. */
async function readRegularFile(path: string, maxBytes: number): Promise<FileRead> {
  let handle;
  try {
    handle = await openRegularFile(path);
  } catch (err) {
    if (err instanceof NotRegularFile) return { why: "not-a-file" };
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "ENOTDIR") return { why: "gone" };
    throw err;
  }
  try {
    const info = await handle.stat();
    if (info.size > maxBytes) return { why: "too-large", size: info.size };
    return { bytes: await handle.readFile(), mtimeMs: info.mtimeMs };
  } finally {
    await handle.close();
  }
}
