// The search page with analysis stages in headless Chromium: filters typed into the search box, boxes and text
// drawn over the photo in the detail view, and the duplicates view.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { closeStages, openStages } from "../../src/engine/analysis/open-stages.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadSharp } from "../../src/engine/native.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { chromiumMissing, launchChromium, MODELS, PHOTOS, serve, tempDir } from "./server-harness.ts";


describe("the search page shows what the stages found", () => {
  if (chromiumMissing) {
    test.skip(`skipped: ${chromiumMissing}`, () => {});
    return;
  }
  let server: RunningServer;
  let ctx: import("playwright-core").BrowserContext;
  const shots = mkdtempSync(join(tmpdir(), "imgd-page-stages-"));

  beforeAll(async () => {
    const root = tempDir("page-stages");
    const photos = join(root, "photos");
    mkdirSync(photos);
    const sign = `<svg width="640" height="427" xmlns="http://www.w3.org/2000/svg"><rect x="200" y="260" width="300" height="100" fill="white"/>
      <text x="350" y="332" font-size="64" font-family="DejaVu Sans" font-weight="bold" text-anchor="middle" fill="black">EXIT</text></svg>`;
    await loadSharp()(join(PHOTOS, "building.jpg"))
      .resize(640, 427, { fit: "fill" })
      .composite([
        { input: { create: { width: 120, height: 80, channels: 3, background: "#ff0000" } }, left: 40, top: 40 },
        { input: Buffer.from(sign), left: 0, top: 0 },
      ])
      .jpeg({ quality: 92 })
      .toFile(join(photos, "exit-car.jpg"));
    cpSync(join(PHOTOS, "home.jpg"), join(photos, "home.jpg"));
    cpSync(join(PHOTOS, "home.jpg"), join(photos, "home-copy.jpg"));
    cpSync(join(PHOTOS, "fruits.jpg"), join(photos, "fruits.jpg"));
    const index = join(root, "index");
    const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
    const stages = await openStages([{ name: "objects", models: { model: "test-yolo" } }, { name: "ocr" }], {
      modelDirs: modelSearchDirs(MODELS),
      threads: 1,
    });
    await runIndex({ roots: [photos], indexDir: index, model, threads: 1, stages }).finally(() => closeStages(stages));
    server = await serve({ root, photos, index }, { stages: [{ name: "objects", models: { model: "test-yolo" } }] });
    ctx = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await ctx?.close();
    await server?.stop();
  });

  test("the API filters by label and text, explains bad filters, and lists what an image holds", async () => {
    const names = async (query: string) =>
      ((await (await fetch(`${server.url}/api/search?${query}`)).json()) as { hits: { path: string }[] }).hits.map((h) => h.path.split("/").pop());
    expect(await names("q=red&has=car")).toEqual(["exit-car.jpg"]);
    expect(await names("has=car&text_in=EXIT")).toEqual(["exit-car.jpg"]);
    expect(await names("text_in=nowhere")).toEqual([]);
    const typo = await fetch(`${server.url}/api/search?q=red&has=cra`);
    expect(typo.status).toBe(400);
    expect(((await typo.json()) as { error: string }).error).toContain('did you mean "car"');
    const noPerson = await fetch(`${server.url}/api/search?person=Alice`);
    expect(noPerson.status).toBe(400);
    expect(((await noPerson.json()) as { error: string }).error).toStartWith("this index has no faces yet: face detection finds them");
    expect((await fetch(`${server.url}/api/search`)).status).toBe(400);

    // An image search takes its filters from the URL as GET does, and a repeated form field keeps every value.
    const byImage = (query: string, fields: [string, string][] = []) => {
      const body = new FormData();
      body.append("image", new File([readFileSync(join(PHOTOS, "home.jpg"))], "q.jpg"));
      for (const [k, v] of fields) body.append(k, v);
      return fetch(`${server.url}/api/search${query}`, { method: "POST", body });
    };
    const fromUrl = (await (await byImage("?has=car&k=5")).json()) as { hits: { path: string }[] };
    expect(fromUrl.hits.map((h) => h.path.split("/").pop())).toEqual(["exit-car.jpg"]);
    const repeated = await byImage("", [["has", "car"], ["has", "cra"]]);
    expect(repeated.status).toBe(400);
    expect(((await repeated.json()) as { error: string }).error).toContain('did you mean "car"');

    const id = ((await (await fetch(`${server.url}/api/search?has=car`)).json()) as { hits: { id: number }[] }).hits[0]!.id;
    const info = (await (await fetch(`${server.url}/api/images/${id}`)).json()) as {
      analyses: { objects: { label: string; box: number[] }[]; text: { text: string }[]; faces: unknown[] };
    };
    expect(info.analyses.objects.map((o) => o.label)).toEqual(["car"]);
    expect(info.analyses.text.map((t) => t.text)).toContain("EXIT");
    expect(info.analyses.faces).toEqual([]);
  });

  test("ingest runs the server's stages and counts vehicles and near duplicates", async () => {
    const car = await loadSharp()(join(PHOTOS, "fruits.jpg"))
      .resize(500)
      .composite([{ input: { create: { width: 90, height: 60, channels: 3, background: "#ff0000" } }, left: 30, top: 30 }])
      .jpeg()
      .toBuffer();
    const resized = await loadSharp()(join(PHOTOS, "home.jpg")).resize(320).jpeg({ quality: 70 }).toBuffer();
    const form = new FormData();
    form.append("files", new File([new Uint8Array(car)], "new-car.jpg"));
    form.append("files", new File([new Uint8Array(resized)], "home-small.jpg"));
    const res = await fetch(`${server.url}/api/ingest`, { method: "POST", body: form });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { processed: number; indexed: { vehicles: number; people: number }; near_duplicates: number };
    expect(body.processed).toBe(2);
    expect(body.indexed.vehicles).toBe(1);
    expect(body.indexed.people).toBe(0);
    // Both are edited copies of indexed photos (fruits.jpg with a red patch, home.jpg resized and re-encoded).
    expect(body.near_duplicates).toBe(2);
    const found = ((await (await fetch(`${server.url}/api/search?has=car&k=10`)).json()) as { hits: { path: string }[] }).hits;
    expect(found.length).toBe(2);
  });

  test("has: and text: filters, then boxes and recognised text in the detail view", async () => {
    const page = await ctx.newPage();
    await page.goto(`${server.url}/`);
    await page.fill("#q", "text:exit has:car");
    await page.keyboard.press("Enter");
    await page.waitForSelector(".card");
    expect(await page.$$eval(".card .name", (els) => els.map((e) => e.textContent))).toEqual(["exit-car.jpg"]);

    await page.keyboard.press("Enter");
    await page.waitForSelector("#detail.open");
    await page.waitForSelector("#detail-boxes rect.object");
    await page.waitForSelector("#detail-boxes polygon.text");
    expect(await page.textContent("#detail-found")).toContain("EXIT");
    expect(await page.textContent("#detail-found")).toContain("car");
    // The object box is drawn where the red rectangle is: its viewBox is the photo's own pixel size.
    const box = await page.$eval("#detail-boxes rect.object", (r) => ["x", "y", "width", "height"].map((a) => Number(r.getAttribute(a))));
    expect(Math.abs(box[0]! - 40)).toBeLessThan(6);
    expect(Math.abs(box[1]! - 40)).toBeLessThan(6);
    expect(Math.abs(box[2]! - 120)).toBeLessThan(8);
    await page.waitForFunction(() => (document.getElementById("detail-image") as HTMLImageElement).naturalWidth > 0);
    await page.screenshot({ path: join(shots, "detail-with-boxes.png") });
    expect(existsSync(join(shots, "detail-with-boxes.png"))).toBe(true);
  });

  test("a person chip's query reads back as that person's name, quotes and backslashes included", async () => {
    const page = await ctx.newPage();
    await page.goto(`${server.url}/`);
    const names = ['Alice B', 'Ann "Bee" Li', "O'Neil \\ back", 'ends with \\', '"'];
    const read = await page.evaluate(
      (list) => list.map((n) => { const p = (window as any).parseQuery(`red ${(window as any).personQuery(n)} has:car`); return [p.get("person"), p.get("q"), p.get("has")]; }),
      names,
    );
    expect(read).toEqual(names.map((n) => [n, "red", "car"]));
    await page.close();
  });

  test("the duplicates view groups the two copies of one photo", async () => {
    const page = await ctx.newPage();
    await page.goto(`${server.url}/`);
    await page.click("#show-duplicates");
    await page.waitForSelector(".group-title");
    const titles = await page.$$eval(".group-title", (els) => els.map((e) => e.textContent));
    expect(titles[0]).toContain("identical files");
    const names = await page.$$eval(".card .name", (els) => els.map((e) => e.textContent));
    expect(names.slice(0, 2).sort()).toEqual(["home-copy.jpg", "home.jpg"]);
    await page.screenshot({ path: join(shots, "duplicates.png") });
  });
});
