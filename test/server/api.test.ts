import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, statSync, utimesSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";
import { createApp } from "../../src/server/app.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, photo, serve, type Fixture } from "./server-harness.ts";

const NAMES = ["orange.jpg", "apple.jpg", "home.jpg", "chelsea.png", "fruits.jpg", "rocket.jpg", "smarties.png"];

describe("the search API over a real index", () => {
  let fx: Fixture;
  let server: RunningServer;
  let url: string;
  const get = (path: string, init?: RequestInit) => fetch(`${url}${path}`, init);
  const json = async (path: string, init?: RequestInit) => {
    const res = await get(path, init);
    return { status: res.status, body: (await res.json()) as any, res };
  };
  const idOf = async (name: string) => {
    const { body } = await json(`/api/search?q=${encodeURIComponent(name)}&k=100`);
    return body.hits.find((h: any) => h.path.endsWith(`/${name}`)).id as number;
  };

  beforeAll(async () => {
    fx = await indexedPhotos("api", NAMES, { "rocket.jpg": "space", "chelsea.png": "space" });
    server = await serve(fx);
    url = server.url;
  });
  afterAll(() => server?.stop());

  test("/health answers ok and /ready reports the warmed model", async () => {
    expect((await json("/health")).body).toEqual({ status: "ok" });
    const ready = await json("/ready");
    expect(ready.status).toBe(200);
    expect(ready.body.model).toBe("test-clip");
  });

  test("a text query ranks the blue-sky house first for 'blue sky' and returns k hits in score order", async () => {
    const { status, body } = await json("/api/search?q=blue%20sky&k=3");
    expect(status).toBe(200);
    expect(body.hits).toHaveLength(3);
    expect(body.hits[0].path).toBe(join(fx.photos, "home.jpg"));
    const scores = body.hits.map((h: any) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(body.hits[0]).toMatchObject({ width: expect.any(Number), height: expect.any(Number), size: expect.any(Number) });
    expect(body.timings.embed).toBeGreaterThanOrEqual(0);
  });

  test("offset pages through the same ranking", async () => {
    const all = (await json("/api/search?q=red&k=4")).body.hits.map((h: any) => h.id);
    const page2 = (await json("/api/search?q=red&k=2&offset=2")).body.hits.map((h: any) => h.id);
    expect(page2).toEqual(all.slice(2, 4));
  });

  test("path_prefix keeps only photos under that folder", async () => {
    const { body } = await json(`/api/search?q=blue&k=10&path_prefix=${encodeURIComponent(join(fx.photos, "space"))}`);
    expect(body.hits.map((h: any) => h.path.split("/").pop()).sort()).toEqual(["chelsea.png", "rocket.jpg"]);
  });

  test("uploading a photo finds that photo first with similarity ~1", async () => {
    const { status, body } = await json("/api/search", { method: "POST", body: form([["q.png", photo("chelsea.png"), "image"]], { k: "2" }) });
    expect(status).toBe(200);
    expect(body.hits).toHaveLength(2);
    expect(body.hits[0].path).toBe(join(fx.photos, "space", "chelsea.png"));
    expect(body.hits[0].score).toBeGreaterThan(0.99);
  });

  test("more like this by image_id leaves the image itself out", async () => {
    const id = await idOf("apple.jpg");
    const { status, body } = await json("/api/search", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ image_id: id, k: 3 }),
    });
    expect(status).toBe(200);
    expect(body.hits).toHaveLength(3);
    expect(body.hits.map((h: any) => h.id)).not.toContain(id);
  });

  test("a filter on a stage this index never ran is a 400 saying what is missing in the API's terms, not the CLI's", async () => {
    const cases: [string, string][] = [
      ["has=car", "this index has no object labels yet: object detection finds them when images are indexed, or ingested (POST /api/ingest) on a server that runs it"],
      ["text_in=EXIT", "this index has no recognised text yet: text recognition finds them when images are indexed, or ingested (POST /api/ingest) on a server that runs it"],
      ["person=Alice", "this index has no faces yet: face detection finds them when images are indexed, or ingested (POST /api/ingest) on a server that runs it"],
    ];
    for (const [query, error] of cases) expect(await json(`/api/search?q=red&${query}`).then((r) => [r.status, r.body])).toEqual([400, { error }]);
  });

  test("image metadata comes back by id and an unknown id is a 404 with a reason", async () => {
    const id = await idOf("orange.jpg");
    const { status, body } = await json(`/api/images/${id}`);
    expect(status).toBe(200);
    expect(body).toMatchObject({ id, path: join(fx.photos, "orange.jpg"), imohash: expect.any(String) });
    const missing = await json("/api/images/999999");
    expect(missing.status).toBe(404);
    expect(missing.body.error).toContain("999999");
  });

  test("a thumbnail is a small JPEG with a strong ETag, and If-None-Match gets a 304", async () => {
    const id = await idOf("fruits.jpg");
    const res = await get(`/api/images/${id}/thumb?size=128`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    const etag = res.headers.get("etag")!;
    expect(etag).toMatch(/^"[^"]+-128"$/);
    const bytes = new Uint8Array(await res.arrayBuffer());
    expect([bytes[0], bytes[1]]).toEqual([0xff, 0xd8]);
    const meta = await (await import("../../src/engine/native.ts")).loadSharp()(bytes).metadata();
    expect(Math.max(meta.width!, meta.height!)).toBe(128);
    const again = await get(`/api/images/${id}/thumb?size=100`, { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    // If-None-Match compares weakly: a cache that weakened the tag still revalidates.
    expect((await get(`/api/images/${id}/thumb?size=128`, { headers: { "if-none-match": `"other", W/${etag}` } })).status).toBe(304);
  });

  test("a byte range of the original is a 206 with Content-Range; one past the end is a 416, as documented", async () => {
    const id = await idOf("rocket.jpg");
    const whole = photo("rocket.jpg");
    const part = await get(`/api/images/${id}/file`, { headers: { range: "bytes=100-199" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 100-199/${whole.length}`);
    expect(new Uint8Array(await part.arrayBuffer())).toEqual(whole.subarray(100, 200));
    const past = await get(`/api/images/${id}/file`, { headers: { range: `bytes=${whole.length + 10}-` } });
    expect(past.status).toBe(416);
    expect(past.headers.get("content-range")).toBe(`bytes */${whole.length}`);
    const doc = (await json("/openapi.json")).body;
    expect(Object.keys(doc.paths["/api/images/{id}/file"].get.responses)).toEqual(expect.arrayContaining(["206", "416"]));
  });

  test("suffix and open ranges are clipped to the file; several ranges, or an If-Range that no longer holds, get it whole", async () => {
    const id = await idOf("rocket.jpg");
    const whole = photo("rocket.jpg");
    const n = whole.length;
    const tail = await get(`/api/images/${id}/file`, { headers: { range: "bytes=-50" } });
    expect([tail.status, tail.headers.get("content-range")]).toEqual([206, `bytes ${n - 50}-${n - 1}/${n}`]);
    expect(tail.headers.get("accept-ranges")).toBe("bytes");
    expect(new Uint8Array(await tail.arrayBuffer())).toEqual(whole.subarray(n - 50));
    const over = await get(`/api/images/${id}/file`, { headers: { range: `bytes=${n - 10}-${n + 1000}` } });
    expect([over.status, over.headers.get("content-length")]).toEqual([206, "10"]);
    await over.arrayBuffer();
    const wholeAnswers: Record<string, string>[] = [{ range: "bytes=0-9,20-29" }, { range: "bytes=0-9", "if-range": '"stale"' }, { range: "pages=1-2" }];
    for (const headers of wholeAnswers) {
      const res = await get(`/api/images/${id}/file`, { headers });
      expect([JSON.stringify(headers), res.status, (await res.arrayBuffer()).byteLength]).toEqual([JSON.stringify(headers), 200, n]);
    }
  });

  test("the log and the metrics count a range answer by the status the client got", async () => {
    const id = await idOf("rocket.jpg");
    const n = photo("rocket.jpg").length;
    await (await get(`/api/images/${id}/file`, { headers: { range: "bytes=0-9", "x-request-id": "range-206" } })).arrayBuffer();
    await (await get(`/api/images/${id}/file`, { headers: { range: `bytes=${n}-`, "x-request-id": "range-416" } })).arrayBuffer();
    await Bun.sleep(50);
    const lines = readFileSync(join(fx.root, "server.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    expect(lines.find((l) => l.request_id === "range-206")?.status).toBe(206);
    expect(lines.find((l) => l.request_id === "range-416")?.status).toBe(416);
    const text = await (await get("/metrics")).text();
    expect(text).toMatch(/imgd_http_requests_total\{route="\/api\/images\/:id\/file",method="GET",status="206"\} \d+/);
    expect(text).toMatch(/imgd_http_requests_total\{route="\/api\/images\/:id\/file",method="GET",status="416"\} \d+/);
  });

  test("the original file is served byte for byte", async () => {
    const id = await idOf("rocket.jpg");
    const res = await get(`/api/images/${id}/file`);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(new Uint8Array(readFileSync(join(fx.photos, "space", "rocket.jpg"))));
    // Never sniffed or run as a page, whatever the file holds.
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(res.headers.get("content-security-policy")).toBe("default-src 'none'; sandbox");
  });

  test("the original revalidates: 304 while it is unchanged, the new bytes once it changes", async () => {
    const id = await idOf("rocket.jpg");
    const path = join(fx.photos, "space", "rocket.jpg");
    const first = await get(`/api/images/${id}/file`);
    const etag = first.headers.get("etag")!;
    expect(etag).toMatch(/^W\/"[0-9a-f]+-[0-9a-f]+"$/);
    expect(first.headers.get("last-modified")).toBe(new Date(statSync(path).mtimeMs).toUTCString());
    expect((await get(`/api/images/${id}/file`, { headers: { "if-none-match": etag } })).status).toBe(304);
    const later = new Date(Date.now() + 60_000);
    utimesSync(path, later, later);
    const changed = await get(`/api/images/${id}/file`, { headers: { "if-none-match": etag } });
    expect(changed.status).toBe(200);
    expect(changed.headers.get("etag")).not.toBe(etag);
  });

  test("the original answers If-Modified-Since (curl -z, wget -N) with 304 until it changes; If-None-Match takes precedence", async () => {
    const id = await idOf("orange.jpg");
    const file = `/api/images/${id}/file`;
    const first = await get(file);
    await first.arrayBuffer();
    const lastModified = first.headers.get("last-modified")!;
    const since = (headers: Record<string, string>) => get(file, { headers }).then(async (r) => [r.status, (await r.arrayBuffer()).byteLength]);
    expect(await since({ "if-modified-since": lastModified })).toEqual([304, 0]);
    expect(await since({ "if-modified-since": new Date(Date.parse(lastModified) + 3_600_000).toUTCString() })).toEqual([304, 0]);
    const n = photo("orange.jpg").length;
    expect(await since({ "if-modified-since": new Date(Date.parse(lastModified) - 1_000).toUTCString() })).toEqual([200, n]);
    expect(await since({ "if-modified-since": "not a date" })).toEqual([200, n]);
    // RFC 9110 13.1.3: with If-None-Match, If-Modified-Since is ignored.
    expect(await since({ "if-modified-since": lastModified, "if-none-match": '"other"' })).toEqual([200, n]);
  });

  test("a method a served path does not take is a 405 with Allow, not a 404 that reads as a missing resource", async () => {
    const id = await idOf("orange.jpg");
    const cases: [string, string, string][] = [
      ["DELETE", `/api/images/${id}`, "GET, HEAD, OPTIONS"],
      ["PUT", "/api/search", "GET, HEAD, POST, OPTIONS"],
      ["GET", "/api/ingest", "POST, OPTIONS"],
      ["HEAD", "/api/ingest", "POST, OPTIONS"],
      ["POST", "/health", "GET, HEAD, OPTIONS"],
      ["PATCH", `/api/images/${id}/file`, "GET, HEAD, OPTIONS"],
    ];
    for (const [method, path, allow] of cases) {
      const res = await get(path, { method });
      const body = method === "HEAD" ? null : ((await res.json()) as any).error;
      expect([method, path, res.status, res.headers.get("allow")]).toEqual([method, path, 405, allow]);
      if (body) expect(body).toBe(`${method} is not allowed on ${path}; it takes ${allow.replace(", OPTIONS", "")}`);
    }
    // Without --cors, OPTIONS says what the path takes.
    const options = await get(`/api/images/${id}/thumb`, { method: "OPTIONS" });
    expect([options.status, options.headers.get("allow")]).toEqual([204, "GET, HEAD, OPTIONS"]);
    // A path nothing serves is still a 404, with no Allow.
    const nowhere = await get(`/api/images/${id}/nothing`, { method: "DELETE" });
    expect([nowhere.status, nowhere.headers.get("allow")]).toEqual([404, null]);
    await nowhere.arrayBuffer();
    // Counted without a series per path: outside /api, under "unmatched" as 404s are.
    const text = await (await get("/metrics")).text();
    expect(text).toMatch(/imgd_http_requests_total\{route="unmatched",method="POST",status="405"\} \d+/);
    expect(text).not.toContain('route="/*"');
  });

  test("HEAD on the metadata and the thumbnail states the length the GET sends", async () => {
    const id = await idOf("rocket.jpg");
    for (const path of [`/api/images/${id}`, `/api/images/${id}/thumb?size=128`]) {
      const body = await (await get(path)).arrayBuffer();
      const head = await get(path, { method: "HEAD" });
      expect([path, head.status, head.headers.get("content-length")]).toEqual([path, 200, String(body.byteLength)]);
      expect((await head.arrayBuffer()).byteLength).toBe(0);
    }
  });

  test("HEAD on the original gives its type and length without the bytes", async () => {
    const id = await idOf("rocket.jpg");
    const res = await get(`/api/images/${id}/file`, { method: "HEAD" });
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    expect(res.headers.get("content-length")).toBe(String(readFileSync(join(fx.photos, "space", "rocket.jpg")).byteLength));
  });

  test("every response echoes the caller's x-request-id, and the log line carries it with stage timings", async () => {
    const res = await get("/api/search?q=yellow&k=1", { headers: { "x-request-id": "test-req-42" } });
    expect(res.headers.get("x-request-id")).toBe("test-req-42");
    await Bun.sleep(50);
    const lines = readFileSync(join(fx.root, "server.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const line = lines.find((l) => l.request_id === "test-req-42");
    expect(line).toMatchObject({ method: "GET", path: "/api/search", route: "/api/search", status: 200 });
    expect(Object.keys(line.timings).sort()).toEqual(["embed", "search"]);
  });

  test("/metrics exposes request counts by route, latency buckets, queue state, index size and cache hits", async () => {
    await get("/api/search?q=orange&k=1");
    await get("/api/search?q=orange&k=1");
    const text = await (await get("/metrics")).text();
    expect(text).toMatch(/imgd_http_requests_total\{route="\/api\/search",method="GET",status="200"\} \d+/);
    expect(text).toMatch(/imgd_http_request_duration_seconds_bucket\{route="\/api\/search",le="0.1"\} \d+/);
    expect(text).toMatch(/imgd_http_request_duration_seconds_bucket\{route="\/api\/search",le="0.2"\} \d+/);
    expect(text).toContain("imgd_requests_in_flight ");
    expect(text).toContain("imgd_requests_queued 0");
    expect(text).toContain(`imgd_index_images ${NAMES.length}`);
    expect(Number(text.match(/imgd_query_cache_hits_total (\d+)/)![1])).toBeGreaterThan(0);
  });

  const promtool = Bun.which("promtool");
  test.skipIf(!promtool)("/metrics passes Prometheus's own linter, promtool check metrics (needs apt-get install prometheus)", async () => {
    await get("/api/search?q=orange&k=1");
    await get("/api/search?k=nope");
    const text = await (await get("/metrics")).text();
    const lint = Bun.spawnSync([promtool!, "check", "metrics"], { stdin: new TextEncoder().encode(text), stdout: "pipe", stderr: "pipe" });
    expect(lint.stderr.toString() + lint.stdout.toString()).toBe("");
    expect(lint.exitCode).toBe(0);
  });

  test("/openapi.json describes every endpoint", async () => {
    const { body } = await json("/openapi.json");
    expect(body.openapi).toBe("3.1.0");
    // Other resources (duplicates, persons, faces) add their own paths; these are the ones this suite serves.
    expect(Object.keys(body.paths)).toEqual(
      expect.arrayContaining(["/api/images/{id}", "/api/images/{id}/file", "/api/images/{id}/thumb", "/api/ingest", "/api/search", "/health", "/metrics", "/ready"]),
    );
    const params = body.paths["/api/search"].get.parameters.map((p: any) => p.name).sort();
    expect(params).toEqual(["after", "before", "has", "k", "offset", "path_prefix", "person", "q", "text_in"]);
    expect(body.paths["/api/ingest"].post.description).toBe(
      "At most 256 images and 64 MiB per request, 20 MiB per image: a larger image is listed in `errors` (reason too-large) and the others are indexed.",
    );
    expect(body.paths["/api/ingest"].post.responses["413"].description).toBe("Over 64 MiB or 256 images in the request.");
    expect(body.paths["/api/search"].post.description).toStartWith("An upload is at most 20 MiB per image. With an upload, k, offset");
    expect(body.paths["/api/search"].post.parameters.map((p: { name: string }) => p.name).sort()).toEqual(["after", "before", "has", "k", "offset", "path_prefix", "person", "text_in"]);
  });

  test("/openapi.json has every route the app serves, each with its path parameters, and no route it does not serve", async () => {
    const doc = (await json("/openapi.json")).body;
    const served = new Set(
      createApp(server.deps)
        .routes.filter((r) => r.method !== "ALL")
        .map((r) => `${r.method} ${r.path.replace(/:(\w+)/g, "{$1}")}`),
    );
    const described = new Set<string>();
    for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(ops)) {
        described.add(`${method.toUpperCase()} ${path}`);
        const inPath = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
        expect([path, (op.parameters ?? []).filter((p: any) => p.in === "path").map((p: any) => p.name)]).toEqual([path, inPath]);
      }
    }
    expect([...described].sort()).toEqual([...served].sort());
  });

  test("/health and /ready answer as /openapi.json says", async () => {
    const doc = (await json("/openapi.json")).body;
    const schema = (path: string, status: string) => z.fromJSONSchema(doc.paths[path].get.responses[status].content["application/json"].schema);
    expect(schema("/health", "200").safeParse((await json("/health")).body).error).toBeUndefined();
    expect(schema("/ready", "200").safeParse((await json("/ready")).body).error).toBeUndefined();
    expect(schema("/ready", "503").safeParse({ status: "warming up", error: "models are still loading" }).error).toBeUndefined();
  });

  test("responses match their /openapi.json schemas, which allow no undocumented fields", async () => {
    const doc = (await json("/openapi.json")).body;
    const schema = (path: string, method: string, status: string) =>
      z.fromJSONSchema(doc.paths[path][method].responses[status].content["application/json"].schema);
    const meta = await json(`/api/images/${await idOf("orange.jpg")}`);
    expect(meta.body.analyses).toEqual({ objects: [], faces: [], text: [] });
    expect(schema("/api/images/{id}", "get", "200").safeParse(meta.body).error).toBeUndefined();

    const junk = form([["notes.jpg", new TextEncoder().encode("not an image\n".repeat(20)), "image"]]);
    const decode = await json("/api/search", { method: "POST", body: junk });
    expect(decode.status).toBe(400);
    expect(decode.body.reason).toBe("not-an-image");
    expect(schema("/api/search", "post", "400").safeParse(decode.body).error).toBeUndefined();

    const none = await json("/api/ingest", { method: "POST", body: form([["empty.jpg", new Uint8Array(0)]]) });
    expect(none.status).toBe(422);
    expect(none.body.error).toContain("none of the 1 images");
    expect(schema("/api/ingest", "post", "422").safeParse(none.body).error).toBeUndefined();
  });

  test("the search page is served at /", async () => {
    const res = await get("/");
    expect(res.headers.get("content-type")).toContain("text/html");
    const html = await res.text();
    expect(html).toContain('id="q"');
    // The image picker lists the RAW and HEIC extensions, which image/* does not cover in every browser.
    const accept = /id="image-file" type="file" accept="([^"]*)"/.exec(html)?.[1]?.split(",");
    expect(accept).toContain("image/*");
    for (const ext of ["heic", "cr3", "raf", "rw2", "orf", "dng", "nef"]) expect(accept).toContain(`.${ext}`);
  });
});
