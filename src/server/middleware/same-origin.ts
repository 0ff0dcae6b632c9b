// A page on another site can post a form or a simple fetch (multipart needs no CORS preflight) to this server from
// the user's browser, so without a token any site they visit could ingest files. Browsers mark such requests with
// Origin: a state-changing one must come from this server's own page (Origin matches the Host it was sent to) or
// from the origin --cors allows. Requests without Origin (curl, scripts) are not a browser's and stay allowed.
import type { MiddlewareHandler } from "hono";

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export function sameOrigin(cors: string | undefined): MiddlewareHandler {
  return async (c, next) => {
    const origin = c.req.header("origin");
    if (origin !== undefined && !SAFE_METHODS.has(c.req.method) && !allowedOrigin(origin, c.req.header("host"), cors)) {
      return c.json({ error: `cross-origin ${c.req.method} from ${origin} refused: not this server's page (allow it with --cors ORIGIN)` }, 403);
    }
    await next();
  };
}

function allowedOrigin(origin: string, host: string | undefined, cors: string | undefined): boolean {
  if (cors === "*" || origin === cors) return true;
  if (!host) return false;
  try {
    const from = new URL(origin);
    // Host parsed with the origin's scheme, so an explicit default port ("example.com:80") compares equal.
    return from.host === new URL(`${from.protocol}//${host}`).host;
  } catch {
    return false; // "null" (sandboxed frames, file: pages) and anything unparsable
  }
}
