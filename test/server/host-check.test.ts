// DNS rebinding: bound to loopback, the server answers only loopback's names (and those it is given), so a page on
// another site whose name was pointed at 127.0.0.1 cannot read it from the visitor's browser.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { rmSync } from "node:fs";
import type { RunningServer } from "../../src/server/server.ts";
import { imgd } from "../cli/cli-harness.ts";
import { indexedPhotos, serve, type Fixture } from "./server-harness.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await indexedPhotos("host-check", ["orange.jpg"]);
}, 60_000);
afterAll(() => rmSync(fx.root, { recursive: true, force: true }));

/** GET `path` on `server` as a browser would send it when it reached the server by `host`. */
async function asHost(server: RunningServer, host: string, path = "/api/search?q=orange") {
  const res = await fetch(`${server.url}${path}`, { headers: { host } });
  return { status: res.status, body: await res.text() };
}

describe("a server bound to 127.0.0.1", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve(fx, { host: "127.0.0.1", allowedHosts: ["photos.lan"] });
  });
  afterAll(() => server.stop());

  test("refuses a request that names another host, on the API, the page and the files alike", async () => {
    for (const path of ["/api/search?q=orange", "/", "/api/images/1/file"]) {
      const r = await asHost(server, `evil.example:${server.port}`, path);
      expect([path, r.status]).toEqual([path, 403]);
      expect(JSON.parse(r.body).error).toContain('Host "evil.example:' + server.port + '" is not a name of this server');
    }
    expect((await asHost(server, "127.0.0.1.evil.example")).status).toBe(403);
    expect((await asHost(server, "localhost.evil.example")).status).toBe(403);
  });

  test("answers loopback's names, IP literals and the names it was given", async () => {
    for (const host of [`localhost:${server.port}`, `127.0.0.1:${server.port}`, `[::1]:${server.port}`, "app.localhost", "PHOTOS.LAN:8080", "10.0.0.5"]) {
      const r = await asHost(server, host);
      expect([host, r.status]).toEqual([host, 200]);
    }
  });
});

test("a server bound to every interface answers any name: it is reached by names only its users know", async () => {
  const server = await serve(fx, { host: "0.0.0.0" });
  try {
    expect((await asHost(server, `photos.example:${server.port}`)).status).toBe(200);
  } finally {
    await server.stop();
  }
});

test("--allowed-host takes a bare host name", async () => {
  for (const bad of ["http://photos.lan", "photos.lan:8080", ""]) {
    const r = await imgd(["serve", "--index", fx.index, "--port", "0", "--allowed-host", bad]);
    expect([bad, r.code]).toEqual([bad, 2]);
    expect(r.stderr).toContain("--allowed-host takes a host name like photos.lan");
  }
});
