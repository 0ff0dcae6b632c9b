import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { bmp24, bmpFixture, BMP_FIXTURES } from "../fixtures/bmp-files.ts";
import { form, idsByName, indexFolder, PHOTOS, serve, tempDir, type Fixture } from "./server-harness.ts";

const sharp = loadSharp();

/** `bytes` (any format sharp reads) as raw RGB. */
async function pixels(bytes: Uint8Array | string) {
  return sharp(bytes).raw().toBuffer({ resolveWithObject: true });
}

describe("serving BMP files", () => {
  let fx: Fixture;
  let server: RunningServer;
  let scanPng: Uint8Array;
  let ids = new Map<string, number>();

  beforeAll(async () => {
    const root = tempDir("bmp");
    const photos = join(root, "photos");
    mkdirSync(photos);
    const { data, info } = await sharp(join(PHOTOS, "messi5.jpg")).resize(1000, 700).raw().toBuffer({ resolveWithObject: true });
    scanPng = new Uint8Array(await sharp(data, { raw: info }).png().toBuffer());
    writeFileSync(join(photos, "Scan0001.bmp"), bmp24(data, info.width, info.height));
    writeFileSync(join(photos, "alpha.bmp"), bmpFixture("v5-argb32.bmp"));
    fx = await indexFolder(root, photos);
    server = await serve(fx);
    ids = await idsByName(server);
  });
  afterAll(() => server?.stop());

  test("search finds them, and their thumbnails are those of the same pictures as PNG", async () => {
    expect([...ids.keys()].sort()).toEqual(["Scan0001.bmp", "alpha.bmp"]);
    for (const [name, png, size, shape] of [
      ["Scan0001.bmp", scanPng, 256, [256, 179]],
      ["alpha.bmp", join(BMP_FIXTURES, "photo-alpha.png"), 128, [47, 35]],
    ] as const) {
      const res = await fetch(`${server.url}/api/images/${ids.get(name)}/thumb?size=${size}`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/jpeg");
      const thumb = await pixels(new Uint8Array(await res.arrayBuffer()));
      const reference = await pixels(await renderThumbnail(typeof png === "string" ? new Uint8Array(readFileSync(png)) : png, size));
      expect([thumb.info.width, thumb.info.height]).toEqual([...shape]);
      expect(Buffer.from(thumb.data).equals(reference.data)).toBe(true);
    }
  });

  test("/file serves the BMP's own bytes as a bitmap", async () => {
    const res = await fetch(`${server.url}/api/images/${ids.get("Scan0001.bmp")}/file`);
    expect(res.status).toBe(200);
    // Bun's type for .bmp is the older image/x-ms-bmp; browsers show either.
    expect(res.headers.get("content-type")).toMatch(/^image\/(x-ms-)?bmp$/);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(fx.photos, "Scan0001.bmp")))).toBe(true);
  });

  test("searching with an uploaded BMP finds it first, whatever the upload is called", async () => {
    const bmp = readFileSync(join(fx.photos, "Scan0001.bmp"));
    for (const name of ["Scan0001.bmp", "blob"]) {
      const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([[name, bmp, "image"]], { k: "1" }) });
      const body = (await res.json()) as { hits: { id: number; score: number }[] };
      expect(body.hits.map((h) => h.id)).toEqual([ids.get("Scan0001.bmp")!]);
      expect(body.hits[0]!.score).toBeGreaterThan(0.999);
    }
  });

  test("searching with a damaged BMP is a 400 that says why", async () => {
    const cut = bmpFixture("rgb24.bmp").subarray(0, 3000);
    const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["cut.bmp", cut, "image"]]) });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: string; reason: string };
    expect(body.reason).toBe("truncated");
    expect(body.error).toContain("the BMP file holds 20 of its 35 rows");
  });

  test("an uploaded BMP is indexed, kept under its own extension, and has a thumbnail; a damaged one is an error", async () => {
    const res = await fetch(`${server.url}/api/ingest`, {
      method: "POST",
      body: form([["SCAN_1999.BMP", bmpFixture("rle4.bmp")], ["bomb.bmp", bomb()]]),
    });
    const body = (await res.json()) as { status: string; processed: number; ids: number[]; errors: { name: string; reason: string; error: string }[] };
    expect([body.status, body.processed]).toEqual(["partial", 1]);
    expect(body.errors).toHaveLength(1);
    expect([body.errors[0]!.name, body.errors[0]!.reason]).toEqual(["bomb.bmp", "too-many-pixels"]);
    expect(body.errors[0]!.error).toStartWith("bomb.bmp: 2147483647x2147483647 is ");
    const meta = (await (await fetch(`${server.url}/api/images/${body.ids[0]}`)).json()) as { path: string; width: number; height: number };
    expect(meta.path).toEndWith(".bmp");
    expect([meta.width, meta.height]).toEqual([47, 35]);
    const thumb = await fetch(`${server.url}/api/images/${body.ids[0]}/thumb?size=128`);
    expect(thumb.status).toBe(200);
    const shown = await pixels(new Uint8Array(await thumb.arrayBuffer()));
    const reference = await pixels(await renderThumbnail(bmpFixture("photo-16.png"), 128));
    expect(Buffer.from(shown.data).equals(reference.data)).toBe(true);
  });
});

/** 60 bytes of BMP header claiming 2^31-1 pixels a side. */
function bomb(): Uint8Array {
  const bytes = bmpFixture("rgb24.bmp").slice(0, 60);
  new DataView(bytes.buffer).setInt32(18, 0x7fffffff, true);
  new DataView(bytes.buffer).setInt32(22, 0x7fffffff, true);
  return bytes;
}
