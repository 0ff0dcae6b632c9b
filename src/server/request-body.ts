// Reading request bodies defensively: malformed JSON or multipart is the client's mistake (400), a file over the
// per-image limit is 413, and the content type decides which of the two a route gets.
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

export interface MultipartBody {
  files: Upload[];
  fields: Record<string, string>;
}

export async function readMultipart(c: Context, maxFileBytes: number): Promise<MultipartBody> {
  let form: FormData;
  try {
    form = await c.req.formData();
  } catch {
    throw httpError(400, "the body is not valid multipart/form-data");
  }
  const files: Upload[] = [];
  const fields: Record<string, string> = {};
  for (const [key, value] of form.entries()) {
    if (typeof value === "string") {
      fields[key] = value;
      continue;
    }
    const file = value as File;
    if (file.size > maxFileBytes) {
      throw httpError(413, `${file.name || key} is ${file.size} bytes; the limit per image is ${maxFileBytes} bytes`);
    }
    files.push({ name: file.name || key, bytes: new Uint8Array(await file.arrayBuffer()) });
  }
  return { files, fields };
}
