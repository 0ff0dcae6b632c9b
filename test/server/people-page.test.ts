// The search page's People view in headless Chromium, behind a prefix-stripping proxy and with a bearer token: a
// person is renamed, two are merged, faces are removed, suggestions accepted and rejected, a person deleted, and
// each change is read back through the API, not only from the page.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { clusterFaces } from "../../src/engine/faces/face-clustering.ts";
import { openPersonsCatalog } from "../../src/engine/faces/persons-catalog.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { FACE_DIMS, facesOf, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";
import { chromiumMissing, indexedPhotos, launchChromium, prefixProxy, serve, type Fixture } from "./server-harness.ts";

const TOKEN = "people-page-token";

describe("the People view edits persons", () => {
  if (chromiumMissing) {
    test.skip(`skipped: ${chromiumMissing}`, () => {});
    return;
  }
  let fx: Fixture;
  let server: RunningServer;
  let proxy: ReturnType<typeof prefixProxy>;
  let ctx: import("playwright-core").BrowserContext;
  const identityFaces = new Map<number, number[]>();
  // IMGD_SCREENSHOTS=docs keeps the screenshot where the README shows it.
  const shots = process.env.IMGD_SCREENSHOTS ? resolve(process.env.IMGD_SCREENSHOTS) : mkdtempSync(join(tmpdir(), "imgd-people-"));

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { Authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { "Content-Type": "application/json" }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const personOfFace = async (faceId: number) => {
    for (const p of (await call("GET", "/api/persons")).body.persons) {
      const { body } = await call("GET", `/api/persons/${p.id}`);
      if (body.faces.some((f: any) => f.id === faceId)) return p.id as number;
    }
    return null;
  };

  beforeAll(async () => {
    fx = await indexedPhotos("people-page", ["astronaut.png", "baboon.jpg", "messi5.jpg"]);
    const ro = await openPersonsCatalog(fx.index, { readOnly: true });
    const images = (await ro.read("SELECT id FROM images ORDER BY path")).map((r) => Number(r[0]));
    ro.close();
    // Identity i has 4 + 2i faces (as in persons-api.test.ts), each on its own photo's one real face (the
    // astronaut's, the baboon's, the footballer's: boxes measured by eye, in the photos' pixels), each face's box a
    // little moved and scaled, so the crops the page shows (and docs/people.png) are of faces.
    const faceBoxes = [[168, 52, 284, 188], [110, 70, 400, 450], [212, 66, 262, 124]] as const;
    const identityOf = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2];
    const vectors = facesOf(unitVectors(3, FACE_DIMS, 31), identityOf, 0.8, 8);
    const ids = await insertFaces(
      join(fx.index, "catalog.duckdb"),
      identityOf.map((identity, i) => ({ imageId: images[identity]!, embedding: row(vectors, i) })),
    );
    ids.forEach((id, i) => identityFaces.set(identityOf[i]!, [...(identityFaces.get(identityOf[i]!) ?? []), id]));
    const rw = await openPersonsCatalog(fx.index, { readOnly: false });
    await rw.write(async (conn) => {
      for (const [i, id] of ids.entries()) {
        const [x0, y0, x1, y1] = faceBoxes[identityOf[i]!]!;
        const scale = 0.92 + 0.06 * (i % 4);
        const w = (x1 - x0) * scale, h = (y1 - y0) * scale;
        const cx = (x0 + x1) / 2 + (((i * 37) % 11) - 5) * 0.01 * w, cy = (y0 + y1) / 2 + (((i * 53) % 11) - 5) * 0.01 * h;
        const box = [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2].map(Math.round);
        await conn.run(`UPDATE faces SET x0 = ${box[0]}, y0 = ${box[1]}, x1 = ${box[2]}, y1 = ${box[3]} WHERE id = ${id}`);
      }
      await clusterFaces(conn, { minClusterSize: 3 });
    });
    rw.close();
    server = await serve(fx, { token: TOKEN });
    proxy = prefixProxy(server.url);
    ctx = await launchChromium();
  }, 120_000);
  afterAll(async () => {
    await ctx?.close();
    proxy?.stop(true);
    await server?.stop();
  });

  test("rename, remove faces, accept and reject suggestions, merge, show a refusal, delete, merge by naming", async () => {
    // The clustering cut identity 1 in two, as a real one does: the user merges them back.
    const [bobBig, bobSmall] = [identityFaces.get(1)!.slice(0, 4), identityFaces.get(1)!.slice(4)];
    const bob = (await personOfFace(bobBig[0]!))!;
    const cut = await call("POST", `/api/persons/${bob}/split`, { face_ids: bobSmall });
    expect(cut.status).toBe(201);
    const bobPart = cut.body.to.id as number;
    const carol = (await personOfFace(identityFaces.get(2)![0]!))!;
    const alice = (await personOfFace(identityFaces.get(0)![0]!))!;

    const page = await ctx.newPage();
    const done = (text: string) => page.waitForFunction((t) => document.getElementById("person-status")!.textContent === `${t}: done`, text);
    await page.goto(`http://127.0.0.1:${proxy.port}/photos/#token=${TOKEN}`);
    await page.click("#show-people");
    await page.waitForSelector(".card[data-person]");
    expect(await page.$$eval(".card", (els) => els.map((e) => Number((e as HTMLElement).dataset.person)))).toEqual([carol, alice, bob, bobPart]);
    expect(await page.textContent("#status")).toBe("4 persons, 0 named: open one to rename, merge or fix its faces");
    // Cover crops load through the proxy with the bearer token.
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>(".card img")).every((i) => i.complete && i.naturalWidth > 0));

    // Focus is on the largest person; Enter opens it with the name field focused; typing a name and Enter names it.
    await page.keyboard.press("Enter");
    await page.waitForSelector("#person.open");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("person-name");
    expect(await page.textContent("#person-title")).toBe(`Unnamed #${carol}`);
    await page.waitForFunction(() => document.querySelectorAll("#person-faces figure").length === 8);
    expect(await page.textContent("#person-counts")).toBe("8 faces in 1 photo");
    await page.keyboard.type("Carol");
    await page.keyboard.press("Enter");
    await done(`Naming Unnamed #${carol} “Carol”`);
    expect((await call("GET", `/api/persons/${carol}`)).body.person.name).toBe("Carol");
    expect(await page.textContent("#person-title")).toBe("Carol");

    // Remove two faces: the second with the keyboard, from the Remove button focus moved to.
    const faceOf = (n: number) => page.$eval(`#person-faces figure:nth-child(${n})`, (f) => f.getAttribute("data-face")).then(Number);
    const removed = [await faceOf(1)];
    await page.click("#person-faces figure:nth-child(1) button");
    await done("Removing a face from Carol");
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Remove");
    removed.push(await faceOf(1));
    await page.keyboard.press("Enter");
    await done("Removing a face from Carol");
    const carolNow = (await call("GET", `/api/persons/${carol}`)).body;
    expect(carolNow.person.faces).toBe(6);
    expect(carolNow.faces.map((f: any) => f.id)).not.toContain(removed[0]);
    expect(carolNow.faces.map((f: any) => f.id)).not.toContain(removed[1]);
    expect(new Set(identityFaces.get(2)).has(removed[0]!) && new Set(identityFaces.get(2)).has(removed[1]!)).toBe(true);

    // The suggestion pass finds both again; one is accepted, the other rejected.
    expect(await page.textContent("#person-suggestions")).toBe("None pending.");
    await page.click("#find-suggestions");
    await done("Looking for faces like the named persons");
    await page.waitForFunction(() => document.querySelectorAll("#person-suggestions figure").length === 2);
    const suggested = await page.$$eval("#person-suggestions figure", (els) => els.map((e) => Number(e.getAttribute("data-face"))));
    expect(suggested.sort()).toEqual([...removed].sort());
    await page.waitForFunction(() => Array.from(document.querySelectorAll<HTMLImageElement>("#person img")).every((i) => i.complete && i.naturalWidth > 0));
    await page.screenshot({ path: join(shots, "people.png") });
    const [accept, reject] = suggested;
    await page.click(`#person-suggestions figure[data-face="${accept}"] button:text("Accept")`);
    await done("Adding a face to Carol");
    await page.click(`#person-suggestions figure[data-face="${reject}"] button:text("Reject")`);
    await done("Rejecting a suggestion for Carol");
    const after = (await call("GET", `/api/persons/${carol}`)).body;
    expect(after.person.faces).toBe(7);
    expect(after.faces.map((f: any) => f.id)).toContain(accept);
    expect(after.faces.map((f: any) => f.id)).not.toContain(reject);
    expect((await call("GET", `/api/persons/${carol}/suggestions`)).body.suggestions).toEqual([]);
    // Rejected stays rejected: another pass does not bring it back.
    await call("POST", "/api/faces/suggestions", {});
    expect((await call("GET", `/api/persons/${carol}/suggestions`)).body.suggestions).toEqual([]);

    // Esc closes the dialog; the view is drawn again, named first, focus on the person just edited.
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.getElementById("person")!.classList.contains("open"));
    await page.waitForFunction((id) => (document.activeElement as HTMLElement)?.dataset?.person === String(id), carol);
    expect(await page.$$eval(".card .name", (els) => els.map((e) => e.textContent))).toEqual(["Carol", `Unnamed #${alice}`, `Unnamed #${bob}`, `Unnamed #${bobPart}`]);

    // Merge the cut-off part into the rest: the dialog shows the merged person.
    await page.click(`.card[data-person="${bobPart}"]`);
    await page.waitForSelector("#person.open");
    await page.selectOption("#merge-target", String(bob));
    await page.click("#merge-form button");
    await done(`Merging Unnamed #${bobPart} into Unnamed #${bob}`);
    expect(await page.textContent("#person-title")).toBe(`Unnamed #${bob}`);
    expect((await call("GET", `/api/persons/${bobPart}`)).status).toBe(404);
    const merged = (await call("GET", `/api/persons/${bob}`)).body;
    expect(merged.faces.map((f: any) => f.id).sort()).toEqual([...identityFaces.get(1)!].sort());

    // The API's refusal (4xx with a reason) is shown in the dialog, and nothing changes.
    await page.fill("#person-name", "12345");
    await page.press("#person-name", "Enter");
    await page.waitForSelector("#person-status.error");
    expect(await page.textContent("#person-status")).toBe(`Naming Unnamed #${bob} “12345”: "12345" would read as a person id; add a letter`);
    expect((await call("GET", `/api/persons/${bob}`)).body.person.name).toBeNull();
    // Another person's name (any case) is offered as a merge into them; declined, nothing changes.
    const answer = (accept: boolean) => new Promise<string>((done) => page.once("dialog", (d) => void (done(d.message()), accept ? d.accept() : d.dismiss())));
    let asked = answer(false);
    await page.fill("#person-name", "carol");
    await page.press("#person-name", "Enter");
    expect(await asked).toBe(`Carol is another person (7 faces). Merge Unnamed #${bob} into Carol?`);
    expect((await call("GET", `/api/persons/${bob}`)).body.person.faces).toBe(6);
    await page.keyboard.press("Escape");

    // Delete asks first: dismissed, the person stays; accepted, it is gone and its faces belong to nobody.
    await page.click(`.card[data-person="${alice}"]`);
    await page.waitForSelector("#person.open");
    asked = answer(false);
    await page.click("#delete-person");
    expect(await asked).toBe(`Delete Unnamed #${alice}? Their 4 faces will belong to nobody; the photos stay.`);
    expect((await call("GET", `/api/persons/${alice}`)).status).toBe(200);
    expect(await page.isVisible("#person")).toBe(true);
    asked = answer(true);
    await page.click("#delete-person");
    await asked;
    await page.waitForFunction(() => document.getElementById("status")!.textContent!.startsWith("Deleting"));
    expect(await page.textContent("#status")).toBe(`Deleting Unnamed #${alice}: done`);
    expect((await call("GET", `/api/persons/${alice}`)).status).toBe(404);
    expect(await personOfFace(identityFaces.get(0)![0]!)).toBeNull();
    expect(await page.$$eval(".card[data-person]", (els) => els.map((e) => Number((e as HTMLElement).dataset.person)))).toEqual([carol, bob]);

    // Naming a person as another is, accepted, merges them.
    await page.click(`.card[data-person="${bob}"]`);
    await page.waitForSelector("#person.open");
    asked = answer(true);
    await page.fill("#person-name", "CAROL");
    await page.press("#person-name", "Enter");
    await asked;
    await done(`Merging Unnamed #${bob} into Carol`);
    expect(await page.textContent("#person-title")).toBe("Carol");
    expect((await call("GET", `/api/persons/${bob}`)).status).toBe(404);
    expect((await call("GET", `/api/persons/${carol}`)).body.person.faces).toBe(13);
    process.stderr.write(`people page screenshot: ${shots}\n`);
    await page.close();
  });

  test("a name is shown as text, never as markup, and a person of one face is counted as one", async () => {
    const carol = (await personOfFace(identityFaces.get(2)![0]!))!;
    const cut = await call("POST", `/api/persons/${carol}/split`, { face_ids: [identityFaces.get(2)![0]] });
    expect(cut.status).toBe(201);
    const name = `<img src=x onerror="window.injected=1">Eve & "Co"`;
    expect((await call("POST", `/api/persons/${cut.body.to.id}/name`, { name })).status).toBe(200);
    const page = await ctx.newPage();
    await page.goto(`http://127.0.0.1:${proxy.port}/photos/#token=${TOKEN}`);
    await page.click("#show-people");
    const card = `.card[data-person="${cut.body.to.id}"]`;
    await page.waitForSelector(card);
    expect(await page.textContent(`${card} .name`)).toBe(name);
    expect(await page.getAttribute(card, "aria-label")).toBe(`${name}, 1 face`);
    await page.click(card);
    await page.waitForSelector("#person.open");
    expect(await page.textContent("#person-title")).toBe(name);
    expect(await page.$$eval("#person-title *, .card .name *", (els) => els.length)).toBe(0);
    expect(await page.evaluate(() => (window as any).injected)).toBeUndefined();
    await page.close();
  });
});
