// Which methods the app answers at a path. A request with another method is a 405 naming them (RFC 9110 15.5.6),
// not a 404: a client sending DELETE /api/images/7 reads a 404 as "there is no image 7".
import type { Env, Hono } from "hono";

/** The methods some route of `app` answers at `path`, HEAD wherever GET is; empty when no route matches the path. */
export function allowedMethods<E extends Env>(app: Hono<E>, path: string): string[] {
  const methods = new Set(app.routes.filter((r) => r.method !== "ALL").map((r) => r.method));
  // Middleware (`app.use`) is registered under ALL and matches any path: only a route of that method counts.
  const allowed = [...methods].filter((m) => app.router.match(m, path)[0].some(([[, route]]) => route.method === m));
  if (allowed.includes("GET")) allowed.push("HEAD");
  return allowed.sort();
}
