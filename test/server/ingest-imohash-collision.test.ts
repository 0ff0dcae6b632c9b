import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { imohashBytes } from "../../src/engine/identity.ts";
import { loadSharp } from "../../src/engine/native.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, PHOTOS, serve, type Fixture } from "./server-harness.ts";

type Bytes = Uint8Array<ArrayBuffer>;

/**
 * Two uncompressed TIFFs of one size that differ only between imohash's first and middle 16 KiB samples (most of
 * the top half inverted): the same imohash, different pictures.
 */
async function collisionPair(): Promise<[Bytes, Bytes]> {
  const tiff = await loadSharp()(join(PHOTOS, "coffee.png")).resize(320, 320, { fit: "cover" }).tiff({ compression: "none" }).toBuffer();
  const changed = Buffer.from(tiff);
  for (let i = 20_000; i < Math.floor(tiff.length / 2) - 1000; i++) changed[i] = 255 - changed[i]!;
  return [new Uint8Array(tiff), new Uint8Array(changed)];
}

describe("POST /api/ingest confirms an imohash match with the full content before calling it a duplicate", () => {
  let fx: Fixture;
  let server: RunningServer;
  let a: Bytes, b: Bytes;
  const ingest = async (body: BodyInit, headers: Record<string, string> = {}) => {
    const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body, headers });
    return { status: res.status, body: (await res.json()) as any };
  };
  const fileOf = async (id: number) => new Uint8Array(await (await fetch(`${server.url}/api/images/${id}/file`)).arrayBuffer());

  beforeAll(async () => {
    fx = await indexedPhotos("ingest-collision", ["orange.jpg"]);
    server = await serve(fx, { roots: [fx.photos] });
    [a, b] = await collisionPair();
  });
  afterAll(() => server?.stop());

  test("the pair shares an imohash but not its bytes", () => {
    expect(imohashBytes(a)).toBe(imohashBytes(b));
    expect(Buffer.compare(a, b)).not.toBe(0);
  });

  test("an upload colliding with an indexed upload is indexed as a new image, and neither stored file is overwritten", async () => {
    const first = await ingest(form([["a.tif", a]]));
    expect(first.body).toMatchObject({ status: "ok", processed: 1, duplicates: 0 });
    const second = await ingest(form([["b.tif", b]]));
    expect(second.body).toMatchObject({ status: "ok", processed: 1, duplicates: 0 });
    const [idA] = first.body.ids, [idB] = second.body.ids;
    expect(idB).not.toBe(idA);
    expect(await fileOf(idA)).toEqual(a);
    expect(await fileOf(idB)).toEqual(b);
    expect(readdirSync(join(fx.index, "uploads"))).toHaveLength(2);

    // A true copy of either is still a duplicate.
    const again = await ingest(form([["a-again.tif", a], ["b-again.tif", b]]));
    expect(again.body).toMatchObject({ status: "ok", processed: 0, duplicates: 2 });
  });

  test("within one request, two colliding files are both indexed; a copy in the same request is a duplicate", async () => {
    const [c, d] = (await collisionPair()).map((bytes) => {
      const out = new Uint8Array(bytes);
      out[out.length - 100] ^= 0xff; // in the last sample: another imohash than the pair above, still shared by c and d
      return out;
    }) as [Bytes, Bytes];
    expect(imohashBytes(c)).toBe(imohashBytes(d));
    const { body } = await ingest(form([["c.tif", c], ["d.tif", d], ["d-copy.tif", d]]));
    expect(body).toMatchObject({ status: "ok", total: 3, processed: 2, duplicates: 1 });
    expect(await fileOf(body.ids[0])).toEqual(c);
    expect(await fileOf(body.ids[1])).toEqual(d);
  });

  test("a path whose file collides with an indexed image is indexed in place", async () => {
    const [, other] = await collisionPair();
    const path = join(fx.photos, "b-on-disk.tif");
    writeFileSync(path, other);
    const { body } = await ingest(JSON.stringify({ paths: [path] }), { "content-type": "application/json" });
    // `b` was uploaded above with these very bytes: a duplicate. A file changed outside the samples is not.
    expect(body).toMatchObject({ processed: 0, duplicates: 1 });
    other[30_000] ^= 0xff;
    writeFileSync(path, other);
    const changed = await ingest(JSON.stringify({ paths: [path] }), { "content-type": "application/json" });
    expect(changed.body).toMatchObject({ status: "ok", processed: 1, duplicates: 0 });
    const meta = (await (await fetch(`${server.url}/api/images/${changed.body.ids[0]}`)).json()) as any;
    expect(meta.path).toBe(path);
    expect(existsSync(path)).toBe(true);
  });
});
