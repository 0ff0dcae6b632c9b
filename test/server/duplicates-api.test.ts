// GET /api/duplicates on the real app over a real test-clip index.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { copyFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadSharp } from "../../src/engine/native.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { indexedPhotos, MODELS, PHOTOS, serve, type Fixture } from "./server-harness.ts";

describe("GET /api/duplicates", () => {
  let fx: Fixture;
  let server: RunningServer;
  const get = async (query = "") => {
    const res = await fetch(`${server.url}/api/duplicates${query}`);
    return { status: res.status, body: (await res.json()) as any };
  };

  /** A resized re-encode of a shared photo, written beside the indexed ones and ingested by path. */
  const ingestSmallCopy = async (photo: string, name: string, width: number, quality: number) => {
    await loadSharp()(join(PHOTOS, photo)).resize(width).jpeg({ quality }).toFile(join(fx.photos, name));
    const ingest = await fetch(`${server.url}/api/ingest`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ paths: [join(fx.photos, name)] }),
    });
    expect((await ingest.json()).processed).toBe(1);
  };

  beforeAll(async () => {
    fx = await indexedPhotos("dups", ["apple.jpg", "baboon.jpg", "home.jpg"]);
    // A byte-identical copy indexed from disk (ingest would skip it as a duplicate of apple.jpg).
    copyFileSync(join(PHOTOS, "apple.jpg"), join(fx.photos, "apple-copy.jpg"));
    const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
    await runIndex({ roots: [fx.photos], indexDir: fx.index, model, batchSize: 8, threads: 1 });
    server = await serve(fx);
  }, 120_000);
  afterAll(() => server?.stop());

  test("groups exact and near duplicates, with thumbnail links that resolve", async () => {
    // A resized re-encode arrives through ingest-by-path, the way a live server grows.
    await ingestSmallCopy("baboon.jpg", "baboon-small.jpg", 160, 60);

    const { status, body } = await get();
    expect(status).toBe(200);
    expect(body.model).toBe("test-clip");
    expect(body.imohash_collisions).toBe(0);
    expect(body.threshold_source).toBe("model-default");
    const exact = body.groups.filter((g: any) => g.kind === "exact");
    expect(exact.length).toBe(1);
    expect(exact[0].images.map((i: any) => i.path).sort()).toEqual([join(fx.photos, "apple-copy.jpg"), join(fx.photos, "apple.jpg")]);
    expect(exact[0].sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(body.groups[0].kind).toBe("exact"); // exact groups come first
    const near = body.groups.filter((g: any) => g.kind === "near");
    for (const g of near) expect(g.similarity).toBeGreaterThanOrEqual(body.near_threshold);
    const paths = near.map((g: any) => g.images.map((i: any) => i.path).sort()).sort();
    expect(paths).toEqual([
      [join(fx.photos, "apple-copy.jpg"), join(fx.photos, "apple.jpg")],
      [join(fx.photos, "baboon-small.jpg"), join(fx.photos, "baboon.jpg")],
    ]);
    expect(body.total_groups).toBe(3);
    const thumb = await fetch(`${server.url}${near[0].images[0].thumb}`);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("Content-Type")).toBe("image/jpeg");
  });

  test("near sets the threshold, exact_only skips the near pass, limit caps the groups", async () => {
    const loose = await get("?near=0.9&limit=1");
    expect(loose.status).toBe(200);
    expect(loose.body.near_threshold).toBe(0.9);
    expect(loose.body.threshold_source).toBe("request");
    expect(loose.body.groups.length).toBe(1);
    expect(loose.body.total_groups).toBeGreaterThanOrEqual(2);
    const exactOnly = await get("?exact_only=true");
    expect(exactOnly.body.near_threshold).toBeNull();
    expect(exactOnly.body.groups.map((g: any) => g.kind)).toEqual(["exact"]);
  });

  test("a threshold outside [0.9, 1] or a bad limit is a 400 that says which field", async () => {
    for (const q of ["?near=1.5", "?near=0", "?near=abc", "?limit=0", "?exact_only=maybe"]) {
      const { status, body } = await get(q);
      expect(status).toBe(400);
      expect(body.error).toMatch(/^(near|limit|exact_only): /);
    }
    // A near-zero threshold made every image a neighbour of every other: a pass quadratic in the index.
    for (const near of ["0.000001", "0.5", "0.89"]) {
      const { status, body } = await get(`?near=${near}`);
      expect([near, status]).toEqual([near, 400]);
      expect(body.error).toMatch(/^near: .*0\.9/);
    }
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    expect(doc.paths["/api/duplicates"].get.parameters.find((p: any) => p.name === "near").schema.minimum).toBe(0.9);
  });

  test("is described in /openapi.json", async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    expect(doc.paths["/api/duplicates"].get.parameters.map((p: any) => p.name).sort()).toEqual(["exact_only", "limit", "near"]);
  });

  test("one report serves concurrent and later requests, and a write to the catalog makes a new one", async () => {
    const logged = async (ids: string[]) => {
      await Bun.sleep(50);
      const lines = readFileSync(join(fx.root, "server.log"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
      return ids.map((id) => lines.find((l) => l.request_id === id)?.duplicates_cached ?? false);
    };
    const ask = async (id: string, query = "?near=0.97") => {
      const res = await fetch(`${server.url}/api/duplicates${query}`, { headers: { "x-request-id": id } });
      return (await res.json()) as any;
    };
    const [a, b] = await Promise.all([ask("dups-a"), ask("dups-b")]);
    expect(b).toEqual(a);
    const one = await ask("dups-c", "?near=0.97&limit=1");
    expect([one.total_groups, one.groups]).toEqual([a.total_groups, a.groups.slice(0, 1)]);
    // One of the two concurrent requests computed the report; the other and the later one shared it.
    expect((await logged(["dups-a", "dups-b", "dups-c"])).filter(Boolean).length).toBe(2);

    // A near duplicate ingested (a write): the next report is computed again and has it.
    await ingestSmallCopy("home.jpg", "home-small.jpg", 200, 70);
    const after = await ask("dups-d", "?near=0.9");
    const again = await ask("dups-e", "?near=0.9");
    expect(await logged(["dups-d", "dups-e"])).toEqual([false, true]);
    expect(after.groups.some((g: any) => g.images.some((i: any) => i.path === join(fx.photos, "home-small.jpg")))).toBe(true);
    expect(again).toEqual(after);
  });
});
