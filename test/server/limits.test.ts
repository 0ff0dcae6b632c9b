import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { symlinkSync } from "node:fs";
import { join } from "node:path";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, photo, serve, type Fixture } from "./server-harness.ts";

let fx: Fixture;
beforeAll(async () => {
  fx = await indexedPhotos("limits", ["orange.jpg", "home.jpg", "coffee.png"], { "coffee.png": "private" });
});

describe("bad input gets a 4xx with a reason and the server keeps serving", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve(fx, { limits: { maxImageBytes: 256 * 1024, maxIngestBytes: 1024 * 1024 } });
  });
  afterAll(() => server?.stop());

  const junkQueries = [
    ["k=-1", "q=cat&k=-1"],
    ["k=abc", "q=cat&k=abc"],
    ["a huge k", "q=cat&k=100000000000"],
    ["a fractional k", "q=cat&k=2.5"],
    ["a negative offset", "q=cat&offset=-5"],
    ["no q", "k=3"],
    ["a blank q", "q=%20%20"],
    ["a q of 5000 chars", `q=${"a".repeat(5000)}`],
    ["a date that is not one", "q=cat&after=yesterday-ish"],
  ];
  for (const [what, qs] of junkQueries) {
    test(`a search with ${what} is a 400 that says what is wrong`, async () => {
      const res = await fetch(`${server.url}/api/search?${qs}`);
      expect(res.status).toBe(400);
      expect(((await res.json()) as any).error).toEqual(expect.any(String));
    });
  }

  test("a date the filter cannot read is a 400 naming the accepted format, in a query or a body; ISO dates filter", async () => {
    const format = "must be a date like 2024-06-01 or a date-time like 2024-06-01T18:30:00";
    const refused = [
      await fetch(`${server.url}/api/search?q=cat&after=2099/09/01`),
      await fetch(`${server.url}/api/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ image_id: 1, before: "2099/09/01" }) }),
      await fetch(`${server.url}/api/search`, { method: "POST", body: form([["q.jpg", photo("orange.jpg"), "image"]], { after: "2099/09/01" }) }),
    ];
    expect(refused.map((r) => r.status)).toEqual([400, 400, 400]);
    expect(await Promise.all(refused.map(async (r) => ((await r.json()) as any).error))).toEqual([`after: ${format}`, `before: ${format}`, `after: ${format}`]);
    const future = await fetch(`${server.url}/api/search?q=cat&after=2099-09-01`);
    expect(((await future.json()) as any).hits).toEqual([]);
    expect((await fetch(`${server.url}/api/search?q=cat&after=2012-09-17`)).status).toBe(200);
  });

  test("unicode junk and broken percent-encoding in q are still searched, not crashed on", async () => {
    for (const q of ["%F0%9F%98%80%E2%80%AE%00%C3", "%FF%FE", encodeURIComponent("\u{1F600}\u202E\u0000 ░▒▓ 漢字 \uFFFF")]) {
      const res = await fetch(`${server.url}/api/search?q=${q}&k=2`);
      expect(res.status).toBe(200);
      expect(((await res.json()) as any).hits).toHaveLength(2);
    }
  });

  test("a non-numeric or unknown image id is a 400 or 404, never a 500", async () => {
    expect((await fetch(`${server.url}/api/images/abc`)).status).toBe(400);
    expect((await fetch(`${server.url}/api/images/-3/thumb`)).status).toBe(400);
    expect((await fetch(`${server.url}/api/images/424242/file`)).status).toBe(404);
    expect((await fetch(`${server.url}/api/images/1/thumb?size=99999`)).status).toBe(400);
  });

  test("ids and counts are decimal digits: hex, exponent and padded forms are a 400, leading zeros are fine", async () => {
    const id = ((await (await fetch(`${server.url}/api/search?q=orange&k=1`)).json()) as any).hits[0].id as number;
    for (const bad of [`0x${id.toString(16)}`, `${id}e0`, `${id}.0`, `+${id}`, ` ${id}`]) {
      const res = await fetch(`${server.url}/api/images/${encodeURIComponent(bad)}`);
      expect([bad, res.status]).toEqual([bad, 400]);
      expect(((await res.json()) as any).error).toBe("id: must be a whole number in decimal digits");
    }
    expect((await fetch(`${server.url}/api/images/0${id}`)).status).toBe(200);
    for (const qs of ["k=0x2", "k=2e0", "offset=1e1", "k="]) expect([qs, (await fetch(`${server.url}/api/search?q=cat&${qs}`)).status]).toEqual([qs, 400]);
    expect((await fetch(`${server.url}/api/images/${id}/thumb?size=1e2`)).status).toBe(400);
    expect((await fetch(`${server.url}/api/persons?limit=0x10`)).status).toBe(400);
  });

  test("an upload over the per-image limit is a 413 naming the limit", async () => {
    const big = new Uint8Array(300 * 1024);
    const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["big.jpg", big, "image"]]) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error).toContain(String(256 * 1024));
  });

  test("one upload over the per-image limit is that image's error in an ingest; the rest of the batch is indexed", async () => {
    const res = await fetch(`${server.url}/api/ingest`, {
      method: "POST",
      body: form([["huge.jpg", new Uint8Array(300 * 1024)], ["home-copy.jpg", photo("home.jpg")]]),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as any;
    expect([body.status, body.total, body.processed + body.duplicates, body.errors_count]).toEqual(["partial", 2, 1, 1]);
    expect(body.errors).toEqual([{ name: "huge.jpg", reason: "too-large", error: `huge.jpg is ${300 * 1024} bytes; the limit per image is ${256 * 1024} bytes` }]);
  });

  test("an ingest body over the request limit is a 413 before it is parsed", async () => {
    const files: [string, Uint8Array][] = Array.from({ length: 6 }, (_, i) => [`f${i}.jpg`, new Uint8Array(200 * 1024)]);
    const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form(files) });
    expect(res.status).toBe(413);
    expect(((await res.json()) as any).error).toContain("limit");
  });

  test("malformed multipart, malformed JSON, a wrong content type and a non-image upload are 4xx with messages", async () => {
    const cases: [RequestInit, number][] = [
      [{ body: "--xyz\r\nContent-Disposition: form-data; name=\"image\"\r\n\r\nabc", headers: { "content-type": "multipart/form-data; boundary=nope" } }, 400],
      [{ body: "{ not json", headers: { "content-type": "application/json" } }, 400],
      [{ body: JSON.stringify({ image_id: "seven" }), headers: { "content-type": "application/json" } }, 400],
      [{ body: JSON.stringify({ image_id: 987654 }), headers: { "content-type": "application/json" } }, 404],
      [{ body: "hello", headers: { "content-type": "text/plain" } }, 415],
      [{ body: form([["notes.jpg", new TextEncoder().encode("just text, no pixels".repeat(10)), "image"]]) }, 400],
      [{ body: form([["a.jpg", photo("orange.jpg"), "image"], ["b.jpg", photo("home.jpg"), "image"]]) }, 400],
    ];
    for (const [init, status] of cases) {
      const res = await fetch(`${server.url}/api/search`, { method: "POST", ...init });
      expect(res.status).toBe(status);
      expect(((await res.json()) as any).error).toEqual(expect.any(String));
    }
    const ingest = await fetch(`${server.url}/api/ingest`, { method: "POST", body: JSON.stringify({ paths: [] }), headers: { "content-type": "application/json" } });
    expect(ingest.status).toBe(400);
    // Ingest refuses a body that is neither multipart nor JSON as search does, and says so in /openapi.json.
    const plain = await fetch(`${server.url}/api/ingest`, { method: "POST", body: "hello", headers: { "content-type": "text/plain" } });
    expect(plain.status).toBe(415);
    expect(((await plain.json()) as any).error).toContain("multipart/form-data");
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    for (const path of ["/api/search", "/api/ingest"]) expect(Object.keys(doc.paths[path].post.responses)).toContain("415");
  });

  test("after all of that the server still answers a normal query", async () => {
    const res = await fetch(`${server.url}/api/search?q=blue&k=1`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as any).hits[0].path).toEndWith("home.jpg");
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics.match(/^.*status="5\d\d".*$/m)?.[0]).toBeUndefined();
  });
});

describe("access control", () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await serve(fx, { token: "s3cret", cors: "https://photos.example", roots: [fx.photos] });
  });
  afterAll(() => server?.stop());

  test("with a token, /api/* needs it as a bearer header while /health stays open", async () => {
    expect((await fetch(`${server.url}/health`)).status).toBe(200);
    const none = await fetch(`${server.url}/api/search?q=red`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as any).error).toContain("token");
    expect((await fetch(`${server.url}/api/search?q=red`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
    expect((await fetch(`${server.url}/api/search?q=red`, { headers: { authorization: "Bearer s3cret" } })).status).toBe(200);
  });

  test("a bare token or another scheme is a 401 with the Bearer challenge, not a 400", async () => {
    for (const authorization of ["s3cret", "Basic dXNlcjpzM2NyZXQ=", "Bearer", "Bearer two words"]) {
      const res = await fetch(`${server.url}/api/search?q=red`, { headers: { authorization } });
      expect([authorization, res.status]).toEqual([authorization, 401]);
      expect(res.headers.get("www-authenticate")).toStartWith("Bearer");
      expect(((await res.json()) as any).error).toBe("missing or wrong bearer token");
    }
  });

  test("a state-changing request from another site's page is 403; the --cors origin, this server's own page and non-browsers pass", async () => {
    const auth = { authorization: "Bearer s3cret", "content-type": "application/json" };
    const similar = (headers: Record<string, string>) =>
      fetch(`${server.url}/api/search`, { method: "POST", headers: { ...auth, ...headers }, body: JSON.stringify({ image_id: 424242 }) });
    expect((await similar({ origin: "https://photos.example" })).status).toBe(404);
    expect((await similar({ origin: server.url })).status).toBe(404);
    const evil = await similar({ origin: "http://evil.example" });
    expect(evil.status).toBe(403);
    expect(((await evil.json()) as any).error).toContain("http://evil.example");

    const open = await serve(fx);
    try {
      const upload = (headers: Record<string, string>) =>
        fetch(`${open.url}/api/ingest`, { method: "POST", headers, body: form([["o.jpg", photo("orange.jpg")]]) });
      expect((await upload({ origin: "http://evil.example" })).status).toBe(403);
      expect((await upload({ origin: "null" })).status).toBe(403);
      expect((await upload({ origin: open.url })).status).toBe(200);
      expect((await upload({})).status).toBe(200);
      expect((await fetch(`${open.url}/api/search?q=red`, { headers: { origin: "http://evil.example" } })).status).toBe(200);
    } finally {
      await open.stop();
    }
  });

  test("CORS headers are sent only for the configured origin", async () => {
    const ok = await fetch(`${server.url}/api/search?q=red`, { headers: { origin: "https://photos.example", authorization: "Bearer s3cret" } });
    expect(ok.headers.get("access-control-allow-origin")).toBe("https://photos.example");
    const preflight = await fetch(`${server.url}/api/search`, {
      method: "OPTIONS",
      headers: { origin: "https://photos.example", "access-control-request-method": "POST" },
    });
    expect(preflight.status).toBe(204);
    // The preflight advertises exactly what each path takes: no PUT/DELETE/PATCH, which no route answers.
    const methods = async (path: string) =>
      (await fetch(`${server.url}${path}`, { method: "OPTIONS", headers: { origin: "https://photos.example", "access-control-request-method": "GET" } }))
        .headers.get("access-control-allow-methods");
    expect(preflight.headers.get("access-control-allow-methods")).toBe("GET,HEAD,POST,OPTIONS");
    expect(await methods("/api/images/1/thumb")).toBe("GET,HEAD,OPTIONS");
    expect(await methods("/api/persons/1/merge")).toBe("POST,OPTIONS");
  });

  test("a symlink inside an allowed root that points outside it is refused for ingest", async () => {
    symlinkSync("/etc/hostname", join(fx.photos, "link.jpg"));
    const res = await fetch(`${server.url}/api/ingest`, {
      method: "POST",
      headers: { authorization: "Bearer s3cret", "content-type": "application/json" },
      body: JSON.stringify({ paths: [join(fx.photos, "link.jpg"), "/etc/passwd"] }),
    });
    const body = (await res.json()) as any;
    expect(res.status).toBe(422);
    expect(body.errors.map((e: any) => e.reason)).toEqual(["outside-roots", "outside-roots"]);
  });

  test("the original of an indexed image outside --root is not served", async () => {
    const narrow = await serve(fx, { roots: [join(fx.photos, "private")] });
    try {
      const hits = ((await (await fetch(`${narrow.url}/api/search?q=brown&k=10`)).json()) as any).hits;
      const file = (name: string) => fetch(`${narrow.url}/api/images/${hits.find((h: any) => h.path.endsWith(name)).id}/file`);
      expect((await file("coffee.png")).status).toBe(200);
      const outside = await file("orange.jpg");
      expect(outside.status).toBe(404);
      expect(((await outside.json()) as any).error).toContain("not under an indexed folder");
    } finally {
      await narrow.stop();
    }
  });

  test("without CORS configured, no CORS headers are sent", async () => {
    const plain = await serve(fx);
    try {
      const res = await fetch(`${plain.url}/api/search?q=red`, { headers: { origin: "https://evil.example" } });
      expect(res.status).toBe(200);
      expect(res.headers.get("access-control-allow-origin")).toBeNull();
    } finally {
      await plain.stop();
    }
  });
});

describe("load shedding", () => {
  test("beyond max concurrency plus a small queue, requests get 429 with Retry-After, never 500, and the server recovers", async () => {
    const server = await serve(fx, { maxConcurrency: 1, maxQueue: 1 });
    try {
      const body = photo("orange.jpg");
      const responses = await Promise.all(
        Array.from({ length: 40 }, () => fetch(`${server.url}/api/search`, { method: "POST", body: form([["o.jpg", body, "image"]]) })),
      );
      const statuses = responses.map((r) => r.status);
      expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
      expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 200 || s === 429)).toBe(true);
      const refused = responses.find((r) => r.status === 429)!;
      expect(refused.headers.get("retry-after")).toBe("1");
      expect(((await refused.json()) as any).error).toContain("busy");
      expect((await fetch(`${server.url}/api/search?q=orange&k=1`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });
});
