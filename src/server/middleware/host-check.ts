// DNS rebinding: a page on another site points its own name at 127.0.0.1, and the visitor's browser then treats this
// server as that site, same origin and all, so the page can read the photos a server on loopback holds. Such
// requests carry the attacker's name in Host. A server bound to loopback answers only the names loopback has
// (localhost, an IP literal, which no DNS answer can rebind) and those it is told with --allowed-host.
import { isIP } from "node:net";
import type { MiddlewareHandler } from "hono";

/**
 * The Host names a server listening on `hostname` answers, or null for any: bound to another interface, it is
 * reached by names only its users know (photos.lan, a proxy's), unless they list them.
 */
export function allowedHostNames(hostname: string | undefined, extra: string[] = []): string[] | null {
  const names = extra.map((n) => n.toLowerCase());
  if (hostname !== undefined && isLoopback(hostname)) return ["localhost", ...names];
  return names.length > 0 ? ["localhost", ...names] : null;
}

export function hostCheck(allowed: string[] | null): MiddlewareHandler {
  return async (c, next) => {
    const host = c.req.header("host");
    // No Host at all is no browser's request (HTTP/1.0 tools): nothing a rebinding page can send.
    if (allowed && host !== undefined && !hostAllowed(host, allowed)) {
      return c.json(
        {
          error:
            `Host ${JSON.stringify(host)} is not a name of this server: a page on another site may be reaching it through ` +
            "DNS rebinding. If that is the name you use for it, start imgd serve with --allowed-host NAME",
        },
        403,
      );
    }
    await next();
  };
}

function hostAllowed(host: string, allowed: string[]): boolean {
  let name: string;
  try {
    name = new URL(`http://${host}`).hostname.toLowerCase();
  } catch {
    return false;
  }
  if (isIP(name.replace(/^\[|\]$/g, "")) !== 0) return true;
  return allowed.some((a) => name === a || (a === "localhost" && name.endsWith(".localhost")));
}

function isLoopback(hostname: string): boolean {
  const name = hostname.replace(/^\[|\]$/g, "").toLowerCase();
  return name === "localhost" || name === "::1" || (isIP(name) === 4 && name.startsWith("127."));
}
