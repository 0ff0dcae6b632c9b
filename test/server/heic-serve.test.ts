import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { heicThreadLimits } from "../../src/engine/heic-decoder.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, idsByName, indexFolder, PHOTOS, serve, tempDir, type Fixture } from "./server-harness.ts";

// HEIC coded with HEVC, made by test/fixtures/heic/make-fixtures.ts from building.jpg at 190x126.
const FIXTURES = join(import.meta.dir, "../fixtures/heic");
const heic = (name: string) => new Uint8Array(readFileSync(join(FIXTURES, `${name}.heic`)));
const sharp = loadSharp();

async function rgb(jpeg: Uint8Array) {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}
const meanDiff = (a: Uint8Array, b: Uint8Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]!), 0) / a.length;

describe("serving HEIC photos (HEVC, as an iPhone writes them)", () => {
  let fx: Fixture;
  let server: RunningServer;
  let dropbox: string;
  let ids = new Map<string, number>();
  /** The photo the fixtures were made from, upright, and the same turned over: thumbnails must be the first. */
  let upright: Uint8Array;
  let upsideDown: Uint8Array;

  beforeAll(async () => {
    const root = tempDir("heic");
    const photos = join(root, "photos");
    mkdirSync(photos);
    cpSync(join(FIXTURES, "photo.heic"), join(photos, "IMG_0001.HEIC"));
    cpSync(join(FIXTURES, "rotated.heic"), join(photos, "IMG_0002.HEIC"));
    cpSync(join(PHOTOS, "orange.jpg"), join(photos, "orange.jpg"));
    fx = await indexFolder(root, photos);
    dropbox = join(root, "dropbox");
    mkdirSync(dropbox);
    cpSync(join(FIXTURES, "thumb.heic"), join(dropbox, "IMG_0003.heic"));
    // As on a host of 4 cores or more, where `imgd index` would run 4 threads: the server must hold to 2.
    heicThreadLimits.maxThreads = 4;
    server = await serve(fx, { roots: [fx.photos, dropbox] });
    ids = await idsByName(server);
    const png = await sharp(join(PHOTOS, "building.jpg")).resize(190, 126, { fit: "fill" }).png().toBuffer();
    upright = (await rgb(await renderThumbnail(png, 128))).data;
    upsideDown = (await rgb(await renderThumbnail(await sharp(png).rotate(180).png().toBuffer(), 128))).data;
  });
  afterAll(() => server?.stop());

  test("/thumb of a HEIC is a JPEG of the photo upright, the turned one included; /file is the HEIC itself", async () => {
    expect([...ids.keys()].sort()).toEqual(["IMG_0001.HEIC", "IMG_0002.HEIC", "orange.jpg"]);
    for (const name of ["IMG_0001.HEIC", "IMG_0002.HEIC"]) {
      const res = await fetch(`${server.url}/api/images/${ids.get(name)}/thumb?size=128`);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toBe("image/jpeg");
      const thumb = await rgb(new Uint8Array(await res.arrayBuffer()));
      expect([name, thumb.width, thumb.height]).toEqual([name, 128, 85]);
      expect(meanDiff(thumb.data, upright)).toBeLessThan(meanDiff(thumb.data, upsideDown) / 3);
    }
    const file = await fetch(`${server.url}/api/images/${ids.get("IMG_0002.HEIC")}/file`);
    expect(file.headers.get("content-type")).toBe("image/heic");
    expect(new Uint8Array(await file.arrayBuffer())).toEqual(heic("rotated"));
    const meta = (await (await fetch(`${server.url}/api/images/${ids.get("IMG_0001.HEIC")}`)).json()) as Record<string, unknown>;
    expect(meta).toMatchObject({ width: 190, height: 126, taken_at: "2023-07-14T10:20:30", camera_make: "Apple", camera_model: "iPhone 15 Pro" });
  });

  test("a server decodes on two threads at most, whatever the cores (each holds ~170 MB)", () => {
    expect(heicThreadLimits.maxThreads).toBeLessThanOrEqual(2);
  });

  test("searching with an uploaded HEIC finds it first", async () => {
    const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["IMG_0001.HEIC", heic("photo"), "image"]], { k: "1" }) });
    const body = (await res.json()) as { hits: { id: number; score: number }[] };
    expect(body.hits.map((h) => h.id)).toEqual([ids.get("IMG_0001.HEIC")!]);
    expect(body.hits[0]!.score).toBeGreaterThan(0.999);
  });

  test("HEICs ingested by upload and by path are indexed, uploads kept as .heic; a cut one is an error that says so", async () => {
    const cut = heic("alpha").subarray(0, 5000);
    const uploaded = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form([["IMG_0004.HEIC", heic("ten-bit")], ["IMG_0005.HEIC", cut]]) });
    const body = (await uploaded.json()) as { status: string; processed: number; ids: number[]; errors: { name: string; reason: string }[] };
    expect([body.status, body.processed]).toEqual(["partial", 1]);
    expect(body.errors.map((e) => [e.name, e.reason])).toEqual([["IMG_0005.HEIC", "truncated"]]);
    const stored = (await (await fetch(`${server.url}/api/images/${body.ids[0]}`)).json()) as { path: string; width: number };
    expect([stored.path.endsWith(".heic"), stored.width]).toEqual([true, 190]);
    const thumb = await fetch(`${server.url}/api/images/${body.ids[0]}/thumb?size=128`);
    expect([thumb.status, thumb.headers.get("content-type")]).toEqual([200, "image/jpeg"]);

    const byPath = await fetch(`${server.url}/api/ingest`, {
      method: "POST",
      body: JSON.stringify({ paths: [join(dropbox, "IMG_0003.heic")] }),
      headers: { "content-type": "application/json" },
    });
    const placed = (await byPath.json()) as { status: string; ids: number[] };
    expect(placed.status).toBe("ok");
    const meta = (await (await fetch(`${server.url}/api/images/${placed.ids[0]}`)).json()) as { path: string; width: number; height: number };
    // The primary image, not the 48-pixel thumbnail item beside it.
    expect(meta).toMatchObject({ path: join(dropbox, "IMG_0003.heic"), width: 190, height: 126 });
  });
});
