// Hono answers HEAD by running the GET route and dropping its body; a response that did not state its length then
// went out with Content-Length: 0. This states the length the GET would have sent.
import type { MiddlewareHandler } from "hono";

export function headLength(): MiddlewareHandler {
  return async (c, next) => {
    await next();
    if (c.req.method !== "HEAD" || c.res.headers.has("content-length") || !c.res.body) return;
    const bytes = await c.res.arrayBuffer();
    const res = new Response(null, c.res);
    res.headers.set("Content-Length", String(bytes.byteLength));
    c.res = undefined;
    c.res = res;
  };
}
