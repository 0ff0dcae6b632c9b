import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { RunningServer } from "../../src/server/server.ts";
import { chromiumMissing, indexedPhotos, launchChromium, prefixProxy, serve, type Fixture } from "./server-harness.ts";


describe("the search page in headless Chromium", () => {
  if (chromiumMissing) {
    test.skip(`skipped: ${chromiumMissing}`, () => {});
    return;
  }
  let fx: Fixture;
  let server: RunningServer;
  let ctx: import("playwright-core").BrowserContext;
  // IMGD_SCREENSHOTS=docs keeps them where the README shows them.
  const shots = process.env.IMGD_SCREENSHOTS ? resolve(process.env.IMGD_SCREENSHOTS) : mkdtempSync(join(tmpdir(), "imgd-page-"));

  beforeAll(async () => {
    fx = await indexedPhotos("page", ["home.jpg", "orange.jpg", "apple.jpg", "chelsea.png", "fruits.jpg", "rocket.jpg", "smarties.png", "coffee.png"]);
    server = await serve(fx);
    ctx = await launchChromium();
  });
  afterAll(async () => {
    await ctx?.close();
    await server?.stop();
  });

  test("keyboard search shows loaded thumbnails, a detail view, and more like this", async () => {
    const page = await ctx.newPage();
    await page.goto(`${server.url}/`);
    await page.keyboard.press("Escape");
    await page.keyboard.press("/");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("q");
    await page.keyboard.type("blue sky");
    await page.keyboard.press("Enter");

    await page.waitForSelector(".card");
    await page.waitForFunction(() => {
      const imgs = Array.from(document.querySelectorAll<HTMLImageElement>(".card img"));
      return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
    });
    const names = await page.$$eval(".card .name", (els) => els.map((e) => e.textContent));
    expect(names[0]).toBe("home.jpg");
    expect(names.length).toBe(8);
    expect(await page.textContent("#status")).toContain("8 results");

    // Focus starts on the first result; arrows move it, Enter opens, Esc closes.
    await page.keyboard.press("ArrowRight");
    expect(await page.evaluate(() => (document.activeElement as HTMLElement).dataset.index)).toBe("1");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#detail.open");
    expect(await page.textContent("#detail-path")).toContain(names[1]!);
    await page.waitForFunction(() => (document.getElementById("detail-image") as HTMLImageElement).naturalWidth > 0);
    await page.keyboard.press("Escape");
    expect(await page.isVisible("#detail")).toBe(false);

    await page.keyboard.press("ArrowLeft");
    await page.keyboard.press("Enter");
    await page.waitForSelector("#detail.open");
    expect(await page.textContent("#detail-name")).toBe("home.jpg");
    expect(await page.textContent("#detail-dims")).toMatch(/\d+ × \d+/);
    await page.screenshot({ path: join(shots, "detail.png") });

    await page.click("#more-like-this");
    await page.waitForFunction(() => document.getElementById("status")!.textContent!.includes("results for photos like home.jpg"));
    const similar = await page.$$eval(".card .name", (els) => els.map((e) => e.textContent));
    expect(similar).not.toContain("home.jpg");
    expect(similar.length).toBe(7);
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>(".card img")).every((i) => i.complete && i.naturalWidth > 0));

    const shot = join(shots, "search-page.png");
    await page.screenshot({ path: shot });
    const png = readFileSync(shot);
    expect([...png.subarray(1, 4)].map((b) => String.fromCharCode(b)).join("")).toBe("PNG");
    expect(png.byteLength).toBeGreaterThan(20_000);
    process.stderr.write(`search page screenshots: ${shots}\n`);
  });

  test("behind a proxy that serves it under /photos/, the page searches, shows thumbnails and opens the original", async () => {
    const proxy = prefixProxy(server.url);
    try {
      const page = await ctx.newPage();
      await page.goto(`http://127.0.0.1:${proxy.port}/photos/?q=blue%20sky`);
      await page.waitForFunction(() => {
        const imgs = Array.from(document.querySelectorAll<HTMLImageElement>(".card img"));
        return imgs.length > 0 && imgs.every((i) => i.complete && i.naturalWidth > 0);
      });
      expect(await page.$$eval(".card .name", (els) => els[0]?.textContent)).toBe("home.jpg");
      await page.click(".card");
      await page.waitForSelector("#detail.open");
      expect(await page.getAttribute("#open-original", "href")).toMatch(/^api\/images\/\d+\/file$/);
      // More like this is a POST through the proxy too.
      await page.click("#more-like-this");
      await page.waitForFunction(() => document.getElementById("status")!.textContent!.includes("results for photos like home.jpg"));
      await page.close();
    } finally {
      proxy.stop(true);
    }
  });

  test("with a token, Original opens the file fetched with the bearer header rather than a link that gets 401", async () => {
    const guarded = await serve(fx, { token: "s3cret-token" });
    try {
      const page = await ctx.newPage();
      await page.goto(`${guarded.url}/?q=orange#token=s3cret-token`);
      await page.waitForSelector(".card");
      await page.click(".card");
      await page.waitForSelector("#detail.open");
      const [tab] = await Promise.all([ctx.waitForEvent("page"), page.click("#open-original")]);
      await tab.waitForURL(/^blob:/);
      await tab.waitForFunction(() => (document.querySelector("img")?.naturalWidth ?? 0) > 0);
      await tab.close();
      await page.close();
    } finally {
      await guarded.stop();
    }
  });
});
