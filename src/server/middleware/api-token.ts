// The optional bearer token of /api/*: one check for the app and for the API that waits for its index
// (deferred-server.ts), so both answer a missing or wrong token alike.
import type { MiddlewareHandler } from "hono";
import { bearerAuth } from "hono/bearer-auth";

export function apiToken(token: string): MiddlewareHandler {
  const error = { error: "missing or wrong bearer token" };
  const unauthorized = { message: error };
  // A bare token or another scheme (Basic) is no bearer credential at all: 401 and the challenge, not hono's 400.
  const notBearer = { message: () => Response.json(error, { status: 401 }) };
  return bearerAuth({ token, noAuthenticationHeader: unauthorized, invalidAuthenticationHeader: notBearer, invalidToken: unauthorized });
}
