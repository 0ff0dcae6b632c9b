// Reading request bodies defensively: malformed JSON or multipart is the client's mistake (400), a file over the
// per-image limit is 413 (or, for a batch, that file's own error), and the content type decides which a route gets.
import type { Context } from "hono";
import { httpError } from "./http-error.ts";

export type BodyKind = "json" | "multipart";

export function bodyKind(c: Context): BodyKind {
  const type = (c.req.header("content-type") ?? "").toLowerCase();
  if (type.startsWith("application/json")) return "json";
  if (type.startsWith("multipart/form-data")) return "multipart";
  throw httpError(415, "send multipart/form-data with image files, or application/json");
}

export async function readJson(c: Context): Promise<unknown> {
  try {
    return await c.req.json();
  } catch {
    throw httpError(400, "the body is not valid JSON");
  }
}

export interface Upload {
  name: string;
  bytes: Uint8Array;
}

/** A file left out of a batch, reported the way the ingest report lists its errors. */
export interface RefusedUpload {
  name: string;
  reason: string;
  error: string;
}

export interface MultipartBody {
  files: Upload[];
  /** A field sent more than once (has=car, has=person) keeps every value. */
  fields: Record<string, string | string[]>;
  /** Files over the limit, when the caller asked for them to be set aside rather than fail the request. */
  refused: RefusedUpload[];
}

export function tooLargeError(name: string, bytes: number, maxBytes: number): string {
  return `${name} is ${bytes} bytes; the limit per image is ${maxBytes} bytes`;
}

/**
 * `oversized: "set-aside"` is for batches: one file over the limit is that file's error, not the whole request's
 * (the request as a whole is capped by the route's body limit before it is parsed).
 */
export async function readMultipart(c: Context, maxFileBytes: number, oversized: "413" | "set-aside" = "413"): Promise<MultipartBody> {
  let form: FormData;
  try {
    form = await c.req.formData();
  } catch {
    throw httpError(400, "the body is not valid multipart/form-data");
  }
  const files: Upload[] = [];
  const fields: Record<string, string | string[]> = {};
  const refused: RefusedUpload[] = [];
  for (const [key, value] of form.entries()) {
    if (typeof value === "string") {
      const prior = fields[key];
      fields[key] = prior === undefined ? value : [...(Array.isArray(prior) ? prior : [prior]), value];
      continue;
    }
    const file = value as File;
    const name = file.name || key;
    if (file.size <= maxFileBytes) files.push({ name, bytes: new Uint8Array(await file.arrayBuffer()) });
    else if (oversized === "set-aside") refused.push({ name, reason: "too-large", error: tooLargeError(name, file.size, maxFileBytes) });
    else throw httpError(413, tooLargeError(name, file.size, maxFileBytes));
  }
  return { files, fields, refused };
}
