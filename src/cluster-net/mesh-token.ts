// The shared secret every mesh request carries. Compared in constant time, over digests so lengths never leak.
import { createHash, timingSafeEqual } from "node:crypto";
import { readFileSync } from "node:fs";
import type { MiddlewareHandler } from "hono";

export class MissingTokenError extends Error {}

export const MIN_TOKEN_LENGTH = 16;

/** `--token`, else `--token-file`, else $IMGD_TOKEN. */
export function resolveToken(opts: { token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv = process.env): string {
  const token = givenToken(opts, env);
  if (!token) throw new MissingTokenError("a mesh token is required: --token T, --token-file FILE or IMGD_TOKEN");
  return token;
}

/** The same lookup where a token is optional (a server may want none); undefined when none is given. */
export function givenToken(opts: { token?: string; tokenFile?: string }, env: NodeJS.ProcessEnv = process.env): string | undefined {
  return opts.token ?? (opts.tokenFile ? readTokenFile(opts.tokenFile) : env.IMGD_TOKEN || undefined);
}

/** A missing or empty file is the user's mistake to name, not an ENOENT or a "token is required" to puzzle over. */
function readTokenFile(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, "utf8").trim();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(`--token-file ${path}: ${code === "ENOENT" ? "no such file" : code === "EISDIR" ? "a folder, not a file" : (err as Error).message}`);
  }
  if (!token) throw new Error(`--token-file ${path} is empty`);
  return token;
}

function digest(s: string): Buffer {
  return createHash("sha256").update(s).digest();
}

export function sameToken(a: string, b: string): boolean {
  return timingSafeEqual(digest(a), digest(b));
}

/** The token of `Authorization: Bearer <token>`, or "" without one. */
export function bearerOf(req: Request): string {
  const header = req.headers.get("authorization") ?? "";
  return header.startsWith("Bearer ") ? header.slice(7) : "";
}

/** 401 unless `Authorization: Bearer <token>`. */
export function requireToken(token: string): MiddlewareHandler {
  return async (c, next) => {
    const given = bearerOf(c.req.raw);
    if (!given || !sameToken(given, token)) return c.json({ error: "missing or wrong mesh token" }, 401);
    await next();
  };
}
