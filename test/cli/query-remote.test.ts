// `imgd query --server URL`: the CLI searching a running server's index, compared with searching it here.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { MAX_K, MAX_OFFSET, MAX_QUERY_CHARS } from "../../src/server/schemas.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { plainImages, randomUnitRows, unitModel } from "../fixtures/unit-index.ts";
import { indexedPhotos, serve, type Fixture } from "../server/server-harness.ts";
import { imgd, imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

const TOKEN = "remote-query-token-0123";
const paths = (r: { hits: { path: string }[] }) => r.hits.map((h) => h.path);

describe("imgd query --server", () => {
  let fx: Fixture;
  let server: RunningServer;
  let here: string;
  let local: any;
  const withToken = { env: { IMGD_TOKEN: TOKEN } };

  beforeAll(async () => {
    fx = await indexedPhotos("query-remote", ["orange.jpg", "apple.jpg", "home.jpg", "rocket.jpg"], { "rocket.jpg": "space" });
    // Before the server holds the catalog: searched by this process alone.
    local = await imgdJson(["query", "blue sky", "--index", fx.index, "-k", "3"]);
    server = await serve(fx, { token: TOKEN });
    here = tempDir("query-remote-here");
  }, 60_000);
  afterAll(() => {
    server?.stop();
    rmSync(fx.root, { recursive: true, force: true });
  });

  test("a text query gives the hits and scores a query on the index itself gives", async () => {
    const remote = await imgdJson(["query", "blue sky", "--server", server.url, "-k", "3"], withToken);
    expect(paths(remote)).toEqual(paths(local));
    expect(paths(remote)[0]).toEndWith("home.jpg");
    remote.hits.forEach((h: any, i: number) => expect(h.score).toBeCloseTo(local.hits[i].score, 4));
    expect(Object.keys(remote.hits[0]).sort()).toEqual(Object.keys(local.hits[0]).sort());
  });

  test("an image query uploads the file; filters and offset go along", async () => {
    const byImage = await imgdJson(["query", "--image", join(PHOTOS, "orange.jpg"), "--server", server.url, "-k", "2"], withToken);
    expect(paths(byImage)[0]).toEndWith("orange.jpg");
    expect(byImage.hits[0].score).toBeGreaterThan(0.99);
    const under = await imgdJson(["query", "red", "--server", server.url, "--path-prefix", join(fx.photos, "space")], withToken);
    expect(paths(under)).toEqual([join(fx.photos, "space", "rocket.jpg")]);
    const all = paths(await imgdJson(["query", "red", "--server", server.url, "-k", "4"], withToken));
    const page = paths(await imgdJson(["query", "red", "--server", server.url, "-k", "2", "--offset", "2"], withToken));
    expect(page).toEqual(all.slice(2, 4));
  });

  test("--copy-to downloads the originals under the match names", async () => {
    const out = join(here, "picked");
    const r = await imgd(["query", "orange", "--server", server.url, "-k", "2", "--copy-to", out], withToken);
    expect(r.code).toBe(0);
    const names = readdirSync(out).sort();
    expect(names).toHaveLength(2);
    expect(names[0]).toMatch(/^match_\d{8}_\d{6}_rank001\.jpg$/);
    const first = await imgdJson(["query", "orange", "--server", server.url, "-k", "1"], withToken);
    expect(new Uint8Array(readFileSync(join(out, names[0]!)))).toEqual(new Uint8Array(readFileSync(first.hits[0].path)));
  });

  test("a missing or wrong token, a server's 4xx and an unreachable server are errors that say so", async () => {
    const noToken = await imgd(["query", "red", "--server", server.url], { env: { IMGD_TOKEN: "" } });
    expect([noToken.code, noToken.stderr]).toEqual([1, expect.stringContaining("wants a token")]);
    const wrong = await imgd(["query", "red", "--server", server.url, "--token", "not-the-token-at-all"]);
    expect([wrong.code, wrong.stderr]).toEqual([1, expect.stringContaining("refused the token")]);
    const tokenFile = join(here, "token");
    writeFileSync(tokenFile, `${TOKEN}\n`);
    expect((await imgd(["query", "red", "--server", server.url, "--token-file", tokenFile], { env: { IMGD_TOKEN: "" } })).code).toBe(0);
    const bad = await imgd(["query", "red", "--server", server.url, "--person", "Nobody"], withToken);
    expect([bad.code, bad.stderr]).toEqual([1, expect.stringMatching(/answered 400: .*face/)]);
    const gone = await imgd(["query", "red", "--server", "http://127.0.0.1:9"]);
    expect([gone.code, gone.stderr]).toEqual([1, expect.stringContaining("cannot reach http://127.0.0.1:9")]);
  });

  test("flags that need the files or the index here are refused with --server", async () => {
    const link = await imgd(["query", "red", "--server", server.url, "--link-to", join(here, "links")]);
    expect([link.code, link.stderr]).toEqual([2, expect.stringContaining("--link-to needs the files on this machine")]);
    const both = await imgd(["query", "red", "--server", server.url, "--index", fx.index]);
    expect([both.code, both.stderr]).toEqual([2, expect.stringContaining("not both")]);
    const relative = await imgd(["query", "red", "--server", server.url, "--path-prefix", "photos/space"], withToken);
    expect([relative.code, relative.stderr]).toEqual([2, expect.stringContaining('is a path on the server, from its root: "photos/space" would match nothing')]);
    const folder = await imgd(["query", "--image", here, "--server", server.url], withToken);
    expect([folder.code, folder.stderr]).toEqual([1, expect.stringContaining("not a regular file")]);
  });

  test("on an index a server holds open, imgd query asks that server, and links its files here", async () => {
    const r = await imgd(["query", "blue sky", "--index", fx.index, "-k", "3", "--link-to", join(here, "links")], withToken);
    expect(r.code).toBe(0);
    expect(r.stderr).toContain(`through imgd serve (PID ${process.pid})`);
    expect(r.stdout.split("\n")[0]).toEndWith("home.jpg");
    expect(readdirSync(join(here, "links"))).toHaveLength(3);
  });
});

describe("an index whose server.json is stale", () => {
  test("is searched by the query itself: the server is gone, or its address no longer answers", async () => {
    const fx = await indexedPhotos("query-stale-server", ["orange.jpg", "home.jpg"]);
    try {
      const exited = Bun.spawn(["true"]);
      await exited.exited;
      const stale = [
        { url: "http://127.0.0.1:9", pid: exited.pid, host: hostname() },
        // Alive (this test runner), but not answering there: a PID reused by another process.
        { url: "http://127.0.0.1:9", pid: process.pid, host: hostname() },
      ];
      for (const address of stale) {
        writeFileSync(join(fx.index, "server.json"), JSON.stringify(address));
        const r = await imgd(["query", "blue sky", "--index", fx.index, "-k", "1"]);
        expect([r.code, r.stdout.trim()]).toEqual([0, expect.stringContaining("home.jpg")]);
        expect(r.stderr).not.toContain("through imgd serve");
      }
    } finally {
      rmSync(fx.root, { recursive: true, force: true });
    }
  }, 60_000);
});

describe("imgd query --server beyond one answer's limits", () => {
  test("-k above what a server answers at once is fetched page by page, as the index here gives it", async () => {
    const root = tempDir("query-remote-pages");
    const index = join(root, "index");
    const n = MAX_K + 150;
    const store = await IndexStore.open(index, { model: { ...unitModel(512), name: "test-clip" } });
    await store.addBatch(plainImages(n), randomUnitRows(n, 512, 5));
    await store.close();
    const query = ["query", "blue sky", "-k", String(MAX_K + 100), "--offset", "20"];
    const local = await imgdJson([...query, "--index", index]);
    const server = await serve({ root, photos: join(root, "photos"), index });
    try {
      const remote = await imgdJson([...query, "--server", server.url]);
      expect(remote.hits).toHaveLength(MAX_K + 100);
      expect(paths(remote)).toEqual(paths(local));
      const listed = await imgdJson(["query", "--path-prefix", "/photos/", "-k", String(n), "--server", server.url]);
      expect(new Set(paths(listed)).size).toBe(n);
      const far = await imgd(["query", "blue", "-k", "10", "--offset", String(MAX_OFFSET + 1), "--server", server.url]);
      expect([far.code, far.stderr]).toEqual([1, expect.stringContaining(`only up to offset ${MAX_OFFSET}`)]);
      const long = await imgd(["query", "blue ".repeat(MAX_QUERY_CHARS), "--server", server.url]);
      expect([long.code, long.stderr]).toEqual([1, expect.stringContaining(`takes at most ${MAX_QUERY_CHARS}`)]);
    } finally {
      server.stop();
      rmSync(root, { recursive: true, force: true });
    }
  }, 60_000);
});
