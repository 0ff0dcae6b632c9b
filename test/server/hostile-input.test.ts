// Requests and disk states found by throwing hostile input at a running imgd serve: each once answered with a hang,
// a 500 or a silent wrong answer.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, MODELS, photo, PHOTOS, serve, type Fixture } from "./server-harness.ts";

/** A request that must be answered within a few seconds: a hang fails the test instead of stalling it. */
const soon = (url: string, init: RequestInit = {}) => fetch(url, { ...init, signal: AbortSignal.timeout(5000) });

describe("an indexed path that has since become a FIFO or a directory", () => {
  let fx: Fixture;
  let server: RunningServer;
  const ids = new Map<string, number>();

  beforeAll(async () => {
    fx = await indexedPhotos("hostile-files", ["orange.jpg", "apple.jpg", "home.jpg"]);
    copyFileSync(join(PHOTOS, "apple.jpg"), join(fx.photos, "apple-copy.jpg"));
    const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
    await runIndex({ roots: [fx.photos], indexDir: fx.index, model, batchSize: 8, threads: 1 });
    server = await serve(fx);
    const hits = ((await (await fetch(`${server.url}/api/search?q=photo&k=10`)).json()) as any).hits as { id: number; path: string }[];
    for (const h of hits) ids.set(h.path.slice(fx.photos.length + 1), h.id);
    for (const name of ["orange.jpg", "apple-copy.jpg"]) {
      rmSync(join(fx.photos, name));
      expect(spawnSync("mkfifo", [join(fx.photos, name)]).status).toBe(0);
    }
    rmSync(join(fx.photos, "home.jpg"));
    mkdirSync(join(fx.photos, "home.jpg"));
  }, 120_000);
  afterAll(() => server?.stop());

  test("its original and thumbnail are a 404 in JSON, not a hang or Bun's HTML error page", async () => {
    for (const name of ["orange.jpg", "home.jpg"]) {
      for (const route of ["file", "thumb"]) {
        const res = await soon(`${server.url}/api/images/${ids.get(name)}/${route}`);
        expect([name, route, res.status]).toEqual([name, route, 404]);
        expect(((await res.json()) as any).error).toContain(`image ${ids.get(name)}`);
      }
    }
  });

  test("duplicates count it as unreadable and an upload of its content is still checked against the rest", async () => {
    const dups = await soon(`${server.url}/api/duplicates?exact_only=true`);
    expect(dups.status).toBe(200);
    expect(((await dups.json()) as any).unreadable).toBe(1);
    const ingest = await soon(`${server.url}/api/ingest`, { method: "POST", body: form([["again.jpg", photo("apple.jpg")]]) });
    expect(ingest.status).toBe(200);
    expect(((await ingest.json()) as any).duplicate_of).toEqual([{ name: "again.jpg", id: ids.get("apple.jpg") }]);
  });

  test("afterwards the catalog still answers: no reader is left waiting on the FIFO", async () => {
    for (const name of ["orange.jpg", "apple.jpg", "apple-copy.jpg"]) {
      const res = await soon(`${server.url}/api/images/${ids.get(name)}`);
      expect([name, res.status]).toEqual([name, 200]);
    }
    expect((await soon(`${server.url}/api/images/${ids.get("apple.jpg")}/thumb`)).status).toBe(200);
  });
});

describe("values that only look like what a route takes", () => {
  let fx: Fixture;
  let server: RunningServer;
  beforeAll(async () => {
    fx = await indexedPhotos("hostile-values", ["orange.jpg", "home.jpg"]);
    server = await serve(fx);
  });
  afterAll(() => server?.stop());

  test("a date that does not exist or is not one is a 400, not a filter by some other date", async () => {
    // Date.parse read "1" and "-0001-01-01" as 2001, "2024" as its new year, and 2024-02-30 as March 1.
    for (const date of ["2024-02-30", "2023-02-29", "1", "-0001-01-01", "2024", "2024-06", "2024-06-01T24:00:00", "99999-01-01"]) {
      const res = await fetch(`${server.url}/api/search?q=cat&after=${encodeURIComponent(date)}`);
      expect([date, res.status]).toEqual([date, 400]);
    }
    for (const date of ["2024-02-29", "0199-01-01", "2024-06-01 18:30", "2024-06-01T18:30:00.250", "2024-06-01T18:30:00Z"]) {
      const res = await fetch(`${server.url}/api/search?q=cat&before=${encodeURIComponent(date)}`);
      expect([date, res.status]).toEqual([date, 200]);
    }
  });

  test("an id or count of the wrong JSON type is a 400, not read as 1", async () => {
    for (const body of [{ image_id: true }, { image_id: [1] }, { image_id: 1, k: true }, { image_id: 1, offset: [0] }]) {
      const res = await fetch(`${server.url}/api/search`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
      expect([body, res.status]).toEqual([body, 400]);
      expect(((await res.json()) as any).error).toEndWith("must be a whole number in decimal digits");
    }
  });

  test("a JSON body over 1 MiB on the persons routes is a 413 before it is read; a small one is read", async () => {
    const big = JSON.stringify({ name: "x".repeat(2 ** 20) });
    for (const path of ["/api/persons", "/api/persons/1/name", "/api/faces/unassign"]) {
      const res = await fetch(`${server.url}${path}`, { method: "POST", headers: { "content-type": "application/json" }, body: big });
      expect([path, res.status]).toEqual([path, 413]);
      expect(((await res.json()) as any).error).toContain("1048576");
    }
    const small = await fetch(`${server.url}/api/persons/1/name`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name: "" }) });
    expect(small.status).toBe(400);
    expect(((await small.json()) as any).error).toStartWith("name:");
  });
});
