import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { imohashBytes } from "../../src/engine/identity.ts";
import { loadSharp } from "../../src/engine/native.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, photo, PHOTOS, serve, tempDir, type Fixture } from "./server-harness.ts";

describe("POST /api/ingest adds images to the live index", () => {
  let fx: Fixture;
  let server: RunningServer;
  let dropbox: string;
  const ingest = async (body: BodyInit, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body, headers });
    return { status: res.status, body: (await res.json()) as any };
  };

  beforeAll(async () => {
    fx = await indexedPhotos("ingest", ["orange.jpg", "apple.jpg"]);
    dropbox = join(fx.root, "dropbox");
    mkdirSync(dropbox);
    cpSync(join(PHOTOS, "rocket.jpg"), join(dropbox, "rocket.jpg"));
    server = await serve(fx, { roots: [fx.photos, dropbox] });
  });
  afterAll(() => server?.stop());

  test("uploads are decoded, embedded and indexed; duplicates of indexed or batch images are counted, not re-indexed", async () => {
    const { status, body } = await ingest(
      form([
        ["cat.png", photo("chelsea.png")],
        ["cat-again.png", photo("chelsea.png")],
        ["orange-copy.jpg", photo("orange.jpg")],
        ["smarties.png", photo("smarties.png")],
        ["notes.jpg", new TextEncoder().encode("not an image at all\n".repeat(30))],
      ]),
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({
      status: "partial",
      total: 5,
      processed: 2,
      duplicates: 2,
      errors_count: 1,
      indexed: { global: 2, vehicles: 0, people: 0, faces: 0, ocr: 0 },
      near_duplicates: 0,
    });
    expect(body.errors[0]).toMatchObject({ name: "notes.jpg", reason: "not-an-image" });
    expect(body.ids).toHaveLength(2);
    expect(body.total_time_ms).toBeGreaterThan(0);
    // Each duplicate names the image holding its content: the cat this request indexed, the orange indexed before.
    expect(body.duplicate_of.map((d: any) => d.name)).toEqual(["cat-again.png", "orange-copy.jpg"]);
    expect(body.duplicate_of[0].id).toBe(body.ids[0]);
    const orange = (await (await fetch(`${server.url}/api/images/${body.duplicate_of[1].id}`)).json()) as any;
    expect(orange.path).toBe(join(fx.photos, "orange.jpg"));
  });

  test("a copy of an upload that cannot be indexed is that upload's error too, not a duplicate", async () => {
    const junk = new TextEncoder().encode("still not an image\n".repeat(30));
    const { status, body } = await ingest(form([["junk.jpg", junk], ["junk-again.jpg", junk]]));
    expect(status).toBe(422);
    expect(body).toMatchObject({ status: "failed", total: 2, processed: 0, duplicates: 0, errors_count: 2, duplicate_of: [] });
    expect(body.errors.map((e: any) => [e.name, e.reason])).toEqual([["junk.jpg", "not-an-image"], ["junk-again.jpg", "not-an-image"]]);
    expect(body.errors[1].error).toContain("the same content as junk.jpg");
  });

  test("an uploaded image is stored under the index, found by search, and has a thumbnail and file", async () => {
    const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["q.png", photo("chelsea.png"), "image"]], { k: "1" }) });
    const hit = ((await res.json()) as any).hits[0];
    expect(hit.score).toBeGreaterThan(0.99);
    expect(hit.path).toStartWith(join(fx.index, "uploads") + "/");
    expect(hit.path).toEndWith(".png");
    expect(existsSync(hit.path)).toBe(true);
    expect((await fetch(`${server.url}/api/images/${hit.id}/thumb`)).status).toBe(200);
    const file = await fetch(`${server.url}/api/images/${hit.id}/file`);
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(photo("chelsea.png"));
  });

  test("an AVIF upload is stored as .avif and its original served as image/avif (sharp names it heif)", async () => {
    const avif = new Uint8Array(await loadSharp()(photo("coffee.png")).avif().toBuffer());
    const { body } = await ingest(form([["coffee.avif", avif]]));
    expect(body).toMatchObject({ status: "ok", processed: 1 });
    const meta = (await (await fetch(`${server.url}/api/images/${body.ids[0]}`)).json()) as any;
    expect(meta.path).toEndWith(".avif");
    const file = await fetch(`${server.url}/api/images/${body.ids[0]}/file`);
    expect(file.headers.get("content-type")).toBe("image/avif");
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(avif);
  });

  test("sending the same upload again only counts a duplicate", async () => {
    const { body } = await ingest(form([["cat.png", photo("chelsea.png")]]));
    expect(body).toMatchObject({ status: "ok", total: 1, processed: 0, duplicates: 1, errors_count: 0 });
    const held = (await (await fetch(`${server.url}/api/images/${body.duplicate_of[0].id}`)).json()) as any;
    expect(new Uint8Array(readFileSync(held.path))).toEqual(photo("chelsea.png"));
  });

  test("JSON paths under an allowed root are indexed in place; paths elsewhere are refused by name", async () => {
    const outside = tempDir("outside");
    cpSync(join(PHOTOS, "baboon.jpg"), join(outside, "baboon.jpg"));
    const { status, body } = await ingest(
      JSON.stringify({ paths: [join(dropbox, "rocket.jpg"), join(outside, "baboon.jpg"), join(dropbox, "..", "..", "..", "etc", "passwd")] }),
      { "content-type": "application/json" },
    );
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: "partial", total: 3, processed: 1, errors_count: 2 });
    expect(body.errors.map((e: any) => e.reason)).toEqual(["outside-roots", "outside-roots"]);
    const meta = (await (await fetch(`${server.url}/api/images/${body.ids[0]}`)).json()) as any;
    expect(meta.path).toBe(join(dropbox, "rocket.jpg"));
  });

  test("an SVG is refused as not an image, whatever its name: it is not a format the scanner indexes", async () => {
    const svg = (fill: string) =>
      new TextEncoder().encode(
        `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="300"><script>alert(document.domain)</script><rect width="300" height="300" fill="${fill}"/></svg>`,
      );
    const { status, body } = await ingest(form([["x.svg", svg("red")], ["x.png", svg("blue")]]));
    expect(status).toBe(422);
    expect(body.errors.map((e: any) => [e.name, e.reason])).toEqual([["x.svg", "not-an-image"], ["x.png", "not-an-image"]]);
    expect(body.errors[0].error).toContain("svg is not an image format imgd indexes");
  });

  test("a path under an allowed root that does not exist is not-found; outside the roots it is outside-roots either way", async () => {
    const { body } = await ingest(
      JSON.stringify({ paths: [join(dropbox, "gone.jpg"), join(dropbox, "new", "gone.jpg"), "/etc/no-such-file.jpg", "/etc/hostname"] }),
      { "content-type": "application/json" },
    );
    expect(body.errors.map((e: any) => e.reason)).toEqual(["not-found", "not-found", "outside-roots", "outside-roots"]);
  });

  test("a relative path is refused by name: the server's working directory is not the client's", async () => {
    const { status, body } = await ingest(JSON.stringify({ paths: ["dropbox/rocket.jpg", "./rocket.jpg"] }), { "content-type": "application/json" });
    expect(status).toBe(422);
    expect(body.errors).toEqual([
      { name: "dropbox/rocket.jpg", reason: "not-absolute", error: "dropbox/rocket.jpg: give the absolute path on the server" },
      { name: "./rocket.jpg", reason: "not-absolute", error: "./rocket.jpg: give the absolute path on the server" },
    ]);
  });

  test("a batch where nothing can be indexed is a 422 with the reasons", async () => {
    const { status, body } = await ingest(form([["empty.jpg", new Uint8Array(0)], ["trunc.jpg", photo("orange.jpg").subarray(0, 1500)]]));
    expect(status).toBe(422);
    expect(body.error).toContain("none of the 2 images");
    expect(body.errors.map((e: any) => e.reason).sort()).toEqual(expect.arrayContaining(["empty-file"]));
  });

  test("per-request ingest stage timings go to the log", async () => {
    await Bun.sleep(50);
    const lines = readFileSync(join(fx.root, "server.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const line = lines.find((l) => l.path === "/api/ingest" && l.status === 200)!;
    expect(Object.keys(line.timings)).toEqual(expect.arrayContaining(["upload", "hash", "decode", "infer", "write"]));
    expect(line.ingest).toMatchObject({ total: 5, processed: 2, duplicates: 2, errors: 1 });
  });
});

describe("uploads the server stopped before committing", () => {
  test("are removed at the next start; committed uploads and files imgd did not name stay", async () => {
    const fx = await indexedPhotos("uploads-left", ["orange.jpg"]);
    const uploads = join(fx.index, "uploads");
    let server = await serve(fx);
    let committed: string;
    try {
      const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form([["cat.png", photo("chelsea.png")]]) });
      const body = (await res.json()) as any;
      expect(body).toMatchObject({ status: "ok", processed: 1 });
      committed = ((await (await fetch(`${server.url}/api/images/${body.ids[0]}`)).json()) as any).path;
    } finally {
      await server.stop();
    }
    // What a kill between writing an upload and committing its row leaves: the file, or its temp file.
    const hash = imohashBytes(photo("smarties.png"));
    writeFileSync(join(uploads, `${hash}.png`), photo("smarties.png"));
    writeFileSync(join(uploads, `.${hash}-0123456789abcdef.png.4242.tmp`), photo("smarties.png").subarray(0, 100));
    writeFileSync(join(uploads, "notes.txt"), "mine");
    writeFileSync(join(uploads, "holiday.png"), photo("smarties.png"));

    server = await serve(fx);
    try {
      expect(readdirSync(uploads).sort()).toEqual([basename(committed), "holiday.png", "notes.txt"].sort());
      const log = readFileSync(join(fx.root, "server.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      expect(log.find((l) => l.event === "uploads-removed")?.files.sort()).toEqual([`${hash}.png`, `.${hash}-0123456789abcdef.png.4242.tmp`].sort());
      // The committed upload is still served; the removed one's content can be uploaded again.
      const hits = ((await (await fetch(`${server.url}/api/search?q=cat&k=5`)).json()) as any).hits;
      expect(hits.map((h: any) => h.path)).toContain(committed);
      const again = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form([["s.png", photo("smarties.png")]]) });
      expect(((await again.json()) as any).processed).toBe(1);
      expect(existsSync(join(uploads, `${hash}.png`))).toBe(true);
    } finally {
      await server.stop();
    }
  });
});
