import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { ImageEmbedder } from "../../src/engine/embed.ts";
import { resolveModel, type ResolvedModel } from "../../src/engine/models.ts";
import { IdleClosingTower } from "../../src/server/idle-closing-tower.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, MODELS, photo, serve } from "./server-harness.ts";

let model: ResolvedModel;
beforeAll(async () => {
  model = await resolveModel("test-clip", [MODELS]);
});

/** A tower over the real test-clip image model that counts its opens and closes. */
function countingTower(idleMs: number, failFirst = false) {
  const counts = { opens: 0, closes: 0, failures: 0 };
  const tower = new IdleClosingTower(
    async () => {
      if (failFirst && counts.failures === 0) {
        counts.failures++;
        throw new Error("the model file is being copied");
      }
      counts.opens++;
      const e = await ImageEmbedder.open(model, { threads: 1 });
      return { dims: e.dims, spec: e.spec, embed: (p, n) => e.embed(p, n), close: async () => (counts.closes++, e.close()) };
    },
    model.manifest.dims,
    model.manifest.preprocess,
    idleMs,
  );
  return { tower, counts };
}

const pixels = (seed: number) => {
  const size = model.manifest.preprocess.size;
  return Float32Array.from({ length: 3 * size * size }, (_, i) => Math.sin(i * 0.01 + seed));
};

describe("the idle-closing image tower", () => {
  test("opens on the first embed, closes after the idle time, and reopens to the same embeddings", async () => {
    const { tower, counts } = countingTower(80);
    expect(tower.loaded).toBe(false);
    const first = await tower.embed(pixels(1), 1);
    expect(tower.loaded).toBe(true);
    await Bun.sleep(250);
    expect(tower.loaded).toBe(false);
    expect(counts).toMatchObject({ opens: 1, closes: 1 });
    expect(tower.idleCloses).toBe(1);
    const again = await tower.embed(pixels(1), 1);
    expect(counts.opens).toBe(2);
    expect([...again]).toEqual([...first]);
    await tower.close();
  });

  test("is never closed while in use: embeds closer together than the idle time share one open", async () => {
    const { tower, counts } = countingTower(60);
    const until = performance.now() + 300;
    for (let i = 0; performance.now() < until; i++) {
      await tower.embed(pixels(i), 1);
      await Bun.sleep(20);
    }
    expect(counts.opens).toBe(1);
    expect(counts.closes).toBe(0);
    await tower.close();
    expect(counts.closes).toBe(1);
  });

  test("a failed open is not kept: the next embed opens again", async () => {
    const { tower, counts } = countingTower(0, true);
    await expect(tower.embed(pixels(2), 1)).rejects.toThrow(/being copied/);
    expect(tower.loaded).toBe(false);
    expect((await tower.embed(pixels(2), 1)).length).toBe(model.manifest.dims);
    expect(counts.opens).toBe(1);
    await tower.close();
  });

  test("a close while the tower is still opening closes it once opened and reports it unloaded", async () => {
    const { tower, counts } = countingTower(0);
    const loading = tower.load();
    await tower.close();
    await loading;
    expect(counts).toMatchObject({ opens: 1, closes: 1 });
    expect(tower.loaded).toBe(false);
  });

  test("after close (the server stopping) an embed still on its way fails instead of opening the tower again", async () => {
    const { tower, counts } = countingTower(60_000);
    await tower.embed(pixels(4), 1);
    await tower.close();
    // A reopened tower is a thread nothing closes: it kept a stopped imgd serve alive until its idle time ran out.
    await expect(tower.embed(pixels(4), 1)).rejects.toThrow(/closed/);
    expect(counts).toMatchObject({ opens: 1, closes: 1 });
    expect(tower.loaded).toBe(false);
  });

  test("an idle time of 0 keeps the tower open", async () => {
    const { tower, counts } = countingTower(0);
    await tower.embed(pixels(3), 1);
    await Bun.sleep(150);
    expect(tower.loaded).toBe(true);
    expect(counts.closes).toBe(0);
    await tower.close();
  });
});

describe("imgd serve with an image tower idle time", () => {
  let server: RunningServer;
  beforeAll(async () => {
    const fx = await indexedPhotos("idle-tower", ["chelsea.png", "fruits.jpg", "home.jpg"]);
    server = await serve(fx, { imageTowerIdleMs: 150 });
  });
  afterAll(() => server?.stop());

  const metric = async (name: string) => Number((await (await fetch(`${server.url}/metrics`)).text()).match(new RegExp(`^${name} (\\S+)$`, "m"))?.[1]);
  const imageSearch = async () => {
    const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["q.png", photo("chelsea.png"), "image"]], { k: "1" }) });
    expect(res.status).toBe(200);
    return ((await res.json()) as any).hits[0].path as string;
  };

  test("an image query opens the tower, idleness closes it (in /metrics), and the next image query reopens it", async () => {
    expect(await metric("imgd_image_tower_loaded")).toBe(0);
    const top = await imageSearch();
    expect(top.endsWith("/chelsea.png")).toBe(true);
    expect(await metric("imgd_image_tower_loaded")).toBe(1);
    await Bun.sleep(600);
    expect(await metric("imgd_image_tower_loaded")).toBe(0);
    expect(await metric("imgd_image_tower_idle_closes_total")).toBe(1);
    expect(await imageSearch()).toBe(top);
  });

  test("text queries do not need the tower and do not reopen it", async () => {
    await Bun.sleep(400);
    const res = await fetch(`${server.url}/api/search?q=a%20cat&k=1`);
    expect(res.status).toBe(200);
    expect(await metric("imgd_image_tower_loaded")).toBe(0);
  });
});
