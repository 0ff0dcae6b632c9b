import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, statSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { MODELS, PHOTOS, serve, tempDir, type Fixture } from "./server-harness.ts";

/** Two uncompressed TIFFs of one size and imohash (they differ only between its samples), different pictures. */
async function collisionPair(): Promise<[Buffer, Buffer]> {
  const tiff = await loadSharp()(join(PHOTOS, "coffee.png")).resize(320, 320, { fit: "cover" }).tiff({ compression: "none" }).toBuffer();
  const changed = Buffer.from(tiff);
  for (let i = 20_000; i < Math.floor(tiff.length / 2) - 1000; i++) changed[i] = 255 - changed[i]!;
  return [tiff, changed];
}

describe("a thumbnail of an original edited on disk since it was indexed", () => {
  let fx: Fixture;
  let server: RunningServer;
  let a: Buffer, b: Buffer;
  const ids: Record<string, number> = {};
  const thumb = async (id: number) => {
    const res = await fetch(`${server.url}/api/images/${id}/thumb?size=256`);
    expect(res.status).toBe(200);
    return { bytes: Buffer.from(await res.arrayBuffer()), etag: res.headers.get("etag") };
  };

  beforeAll(async () => {
    const root = tempDir("thumb-changed");
    fx = { root, photos: join(root, "photos"), index: join(root, "index") };
    [a, b] = await collisionPair();
    mkdirSync(join(fx.photos, "copy"), { recursive: true });
    // One picture twice (one imohash), and another that will be edited in place.
    writeFileSync(join(fx.photos, "shot.tif"), a);
    writeFileSync(join(fx.photos, "copy", "shot.tif"), a);
    writeFileSync(join(fx.photos, "edited-twice.tif"), a);
    // Two pictures of one size and imohash with one modification time, as two files written within one tick of
    // the kernel's coarse clock (two colliding uploads of one ingest) get.
    writeFileSync(join(fx.photos, "twin-a.tif"), a);
    writeFileSync(join(fx.photos, "twin-b.tif"), b);
    const tick = new Date("2024-06-01T12:00:00Z");
    utimesSync(join(fx.photos, "twin-a.tif"), tick, tick);
    utimesSync(join(fx.photos, "twin-b.tif"), tick, tick);
    const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
    await runIndex({ roots: [fx.photos], indexDir: fx.index, model, batchSize: 8, threads: 1 });
    server = await serve(fx);
    const hits = ((await (await fetch(`${server.url}/api/search?q=coffee&k=10`)).json()) as any).hits;
    for (const h of hits) ids[h.path.slice(fx.photos.length + 1)] = h.id;
    expect(Object.keys(ids).sort()).toEqual(["copy/shot.tif", "edited-twice.tif", "shot.tif", "twin-a.tif", "twin-b.tif"]);
  });
  afterAll(() => server?.stop());

  test("shows what the file holds now, and never becomes the thumbnail of an unchanged copy", async () => {
    const ofA = Buffer.from(await renderThumbnail(a, 256));
    const ofB = Buffer.from(await renderThumbnail(b, 256));
    expect(Buffer.compare(ofA, ofB)).not.toBe(0);
    expect((await thumb(ids["shot.tif"]!)).bytes).toEqual(ofA);

    // Same size and imohash, another picture: only the modification time tells.
    await Bun.sleep(20);
    writeFileSync(join(fx.photos, "shot.tif"), b);
    const edited = await thumb(ids["shot.tif"]!);
    expect(edited.bytes).toEqual(ofB);
    const copy = await thumb(ids["copy/shot.tif"]!);
    expect(copy.bytes).toEqual(ofA);
    expect(edited.etag).not.toBe(copy.etag);

    // Both stay right once cached, in memory and on disk.
    expect((await thumb(ids["copy/shot.tif"]!)).bytes).toEqual(ofA);
    expect((await thumb(ids["shot.tif"]!)).bytes).toEqual(ofB);
  });

  test("the disk cache keeps only the latest version of an edited file's thumbnail", async () => {
    const path = join(fx.photos, "edited-twice.tif");
    const id = ids["edited-twice.tif"]!;
    const info = statSync(path, { bigint: true });
    const folder = join(fx.index, "thumbs", "256", `${info.dev.toString(16)}-${info.ino.toString(16)}`);
    const legacy = join(fx.index, "thumbs", "256", "from-an-older-imgd.jpg");
    writeFileSync(legacy, "x");
    for (const [i, content] of [a, b, a].entries()) {
      await Bun.sleep(20);
      writeFileSync(path, content);
      utimesSync(path, new Date(), new Date(Date.now() + i * 1000));
      await thumb(id);
    }
    expect(readdirSync(folder)).toHaveLength(1);
    // What an older imgd filed flat under the size goes when a server starts.
    const restarted = await serve(fx);
    await Bun.sleep(100);
    restarted.stop();
    expect(existsSync(legacy)).toBe(false);
  });

  test("two files of one size, imohash and modification time each get their own", async () => {
    const ofA = Buffer.from(await renderThumbnail(a, 256));
    const ofB = Buffer.from(await renderThumbnail(b, 256));
    expect((await thumb(ids["twin-a.tif"]!)).bytes).toEqual(ofA);
    expect((await thumb(ids["twin-b.tif"]!)).bytes).toEqual(ofB);
  });
});
