// Every error a client can cause is a 4xx with `{ error: "reason" }`; anything else is our bug and a 500.
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { ContentfulStatusCode } from "hono/utils/http-status";
import { z } from "zod";
import { ImageError } from "../engine/types.ts";

export function httpError(status: ContentfulStatusCode, message: string, headers?: Record<string, string>): HTTPException {
  return new HTTPException(status, { message, res: Response.json({ error: message }, { status, headers }) });
}

export function errorResponse(c: Context, status: ContentfulStatusCode, message: string): Response {
  return c.json({ error: message }, status);
}

/** Parses with zod; a failure becomes a 400 naming the offending field. */
export function parseInput<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length > 0 ? `${issue.path.join(".")}: ` : "";
  throw httpError(400, `${where}${issue.message}`);
}

/** Maps thrown errors to responses; image decode failures are the client's bad input, not ours. */
export function toErrorResponse(err: unknown, c: Context): Response {
  if (err instanceof HTTPException) return err.getResponse();
  if (err instanceof ImageError) return c.json({ error: err.message, reason: err.reason }, 400);
  return c.json({ error: "internal error" }, 500);
}
