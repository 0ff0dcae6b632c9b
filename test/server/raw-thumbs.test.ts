import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { dngFile, nefFile, photoJpeg, type Camera } from "../fixtures/raw-files.ts";
import { form, idsByName, indexFolder, serve, tempDir, type Fixture } from "./server-harness.ts";

const sharp = loadSharp();
const CAMERA: Camera = { make: "SONY", model: "ILCE-7M3", taken: "2022:05:06 07:08:09" };

describe("serving camera RAW files", () => {
  let fx: Fixture;
  let server: RunningServer;
  let turned: Uint8Array;
  let ids = new Map<string, number>();

  beforeAll(async () => {
    const root = tempDir("raw");
    const photos = join(root, "photos");
    mkdirSync(photos);
    const upright = await photoJpeg("messi5.jpg", 1200, 800);
    turned = new Uint8Array(await sharp(await photoJpeg("fruits.jpg", 1024, 768)).withMetadata({ orientation: 6 }).toBuffer());
    writeFileSync(join(photos, "upright.dng"), await dngFile(upright, [1200, 800], CAMERA));
    writeFileSync(join(photos, "turned.NEF"), await nefFile(turned, CAMERA, 6));
    fx = await indexFolder(root, photos);
    server = await serve(fx);
    ids = await idsByName(server);
  });
  afterAll(() => server?.stop());

  test("search finds them, and their thumbnails are their previews turned upright", async () => {
    expect([...ids.keys()].sort()).toEqual(["turned.NEF", "upright.dng"]);
    const res = await fetch(`${server.url}/api/images/${ids.get("turned.NEF")}/thumb?size=256`);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("image/jpeg");
    const thumb = await sharp(new Uint8Array(await res.arrayBuffer())).raw().toBuffer({ resolveWithObject: true });
    const reference = await sharp(await renderThumbnail(turned, 256)).raw().toBuffer({ resolveWithObject: true });
    expect([thumb.info.width, thumb.info.height]).toEqual([192, 256]);
    expect(Buffer.from(thumb.data).equals(reference.data)).toBe(true);
    const upright = await fetch(`${server.url}/api/images/${ids.get("upright.dng")}/thumb?size=512`);
    const meta = await sharp(new Uint8Array(await upright.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 512, 341]);
  });

  test("searching with an uploaded RAW file finds it first", async () => {
    const raw = readFileSync(join(fx.photos, "turned.NEF"));
    const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["turned.NEF", raw, "image"]], { k: "1" }) });
    const body = (await res.json()) as { hits: { id: number; score: number }[] };
    expect(body.hits.map((h) => h.id)).toEqual([ids.get("turned.NEF")!]);
    expect(body.hits[0]!.score).toBeGreaterThan(0.999);
  });

  test("/file serves the RAW file's own bytes", async () => {
    const res = await fetch(`${server.url}/api/images/${ids.get("turned.NEF")}/file`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(readFileSync(join(fx.photos, "turned.NEF")))).toBe(true);
  });

  test("the image's metadata gives the preview's upright size and the RAW's camera", async () => {
    const body = (await (await fetch(`${server.url}/api/images/${ids.get("turned.NEF")}`)).json()) as Record<string, unknown>;
    expect([body.width, body.height, body.camera_make, body.camera_model]).toEqual([768, 1024, CAMERA.make, CAMERA.model]);
  });

  test("an uploaded RAW is indexed from its preview, kept under its own extension, and has a thumbnail", async () => {
    const raw = await nefFile(await photoJpeg("rocket.jpg", 900, 600), CAMERA, 8);
    const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form([["DSC_0042.NEF", raw]]) });
    const body = (await res.json()) as { processed: number; ids: number[] };
    expect(body.processed).toBe(1);
    const meta = (await (await fetch(`${server.url}/api/images/${body.ids[0]}`)).json()) as { path: string; width: number; height: number };
    expect(meta.path).toEndWith(".nef");
    expect([meta.width, meta.height]).toEqual([600, 900]);
    const thumb = await fetch(`${server.url}/api/images/${body.ids[0]}/thumb?size=256`);
    expect(thumb.status).toBe(200);
    const size = await sharp(new Uint8Array(await thumb.arrayBuffer())).metadata();
    expect([size.width, size.height]).toEqual([171, 256]);
  });
});
