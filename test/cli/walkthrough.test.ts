// What a new user following the README runs into: flags named as they were typed, paging that goes on from the
// first page, --json that reports every filter, and errors that say what to fix instead of a library's message.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { indexedPhotos, serve, type Fixture } from "../server/server-harness.ts";
import { imgd, imgdJson, tempDir } from "./cli-harness.ts";

describe("imgd from the README", () => {
  let fx: Fixture;

  beforeAll(async () => {
    fx = await indexedPhotos("walkthrough", ["orange.jpg", "apple.jpg", "home.jpg", "rocket.jpg"], { "rocket.jpg": "space" });
  }, 60_000);
  afterAll(() => rmSync(fx.root, { recursive: true, force: true }));

  test("a bad number names the flag as it was typed: -k, --batch, or the argument", async () => {
    const k = await imgd(["query", "red", "--index", fx.index, "-k", "0"]);
    expect([k.code, k.stderr.split("\n")[0]]).toEqual([2, 'imgd: -k takes a whole number >= 1, got "0"']);
    const batch = await imgd(["index", fx.photos, "--index", fx.index, "--batch", "x"]);
    expect(batch.stderr.split("\n")[0]).toBe('imgd: --batch takes a whole number >= 1, got "x"');
    const face = await imgd(["persons", "split", "1", "abc", "--index", fx.index]);
    expect(face.stderr.split("\n")[0]).toBe('imgd: face id takes a whole number >= 1, got "abc"');
    // Decimal digits only, as the API takes them: Number() read "0x10" as 16 and "1e3" as 1000.
    for (const n of ["0x10", "1e3", "1.0", " 5"]) {
      const odd = await imgd(["query", "red", "--index", fx.index, "-k", n]);
      expect([n, odd.code, odd.stderr.split("\n")[0]]).toEqual([n, 2, `imgd: -k takes a whole number >= 1, got "${n}"`]);
    }
  });

  test("persons name with an unquoted name of two words says to quote it", async () => {
    const r = await imgd(["persons", "name", "3", "Alice", "B", "--index", fx.index]);
    expect([r.code, r.stderr.split("\n")[0]]).toEqual([2, 'imgd: persons name takes one NAME: quote a name with spaces, as in "Alice B"']);
  });

  test("imgd --version and imgd help COMMAND answer like imgd version and imgd COMMAND --help", async () => {
    const version = await imgd(["version"]);
    expect(await imgd(["--version"])).toEqual(version);
    const help = await imgd(["help", "dups"]);
    expect(help).toEqual(await imgd(["dups", "--help"]));
    expect(help.stdout).toContain("imgd dups [--index PATH]");
    expect(help.stdout).not.toContain("imgd query");
  });

  test("with --offset the printed ranks and the --copy-to names go on from the first page", async () => {
    const all = await imgdJson(["query", "red", "--index", fx.index, "-k", "4"]);
    const page = await imgd(["query", "red", "--index", fx.index, "-k", "2", "--offset", "2", "--copy-to", join(fx.root, "page2")]);
    expect(page.code).toBe(0);
    const printed = page.stdout.trim().split("\n").filter((l) => /^\s*\d+ /.test(l)).map((l) => l.trim().split(/\s+/));
    expect(printed.map((cols) => [cols[0], cols[2]])).toEqual([
      ["3", all.hits[2].path],
      ["4", all.hits[3].path],
    ]);
    const names = readdirSync(join(fx.root, "page2")).sort();
    expect(names.map((n) => n.match(/_rank(\d+)\./)?.[1])).toEqual(["003", "004"]);
    expect(page.stderr).toMatch(/^\(2 results in /);
  });

  test("--json reports every filter given, dates and folder included", async () => {
    const r = await imgdJson(["query", "red", "--index", fx.index, "--after", "2001-02-03", "--before", "2030-01-01", "--path-prefix", fx.photos]);
    expect(r.filters).toEqual({ pathPrefix: fx.photos, after: "2001-02-03", before: "2030-01-01" });
  });

  test("a missing or empty --token-file is named, not an ENOENT or 'a token is required'", async () => {
    const missing = join(fx.root, "no-token");
    const none = await imgd(["query", "red", "--server", "http://127.0.0.1:9", "--token-file", missing]);
    expect([none.code, none.stderr]).toEqual([1, `imgd: --token-file ${missing}: no such file\n`]);
    const empty = join(fx.root, "empty-token");
    writeFileSync(empty, "\n");
    const worker = await imgd(["worker", "--coordinator", "http://127.0.0.1:9", "--token-file", empty]);
    expect([worker.code, worker.stderr]).toEqual([1, `imgd: --token-file ${empty} is empty\n`]);
    // Both at once is refused before either is read, whichever command takes them.
    for (const args of [["query", "red", "--server", "http://127.0.0.1:9"], ["worker", "--coordinator", "http://127.0.0.1:9"]]) {
      const both = await imgd([...args, "--token", "a-token-of-16-chars", "--token-file", missing]);
      expect(both.code).toBe(2);
      expect(both.stderr).toStartWith("imgd: --token and --token-file exclude each other: give one\n");
    }
  });

  test("imgd export of an index a server holds says which process has it, as query and info do", async () => {
    const server = await serve(fx);
    try {
      const out = join(tempDir("walkthrough-export"), "x.parquet");
      const r = await imgd(["export", "--parquet", out, "--index", fx.index]);
      expect(r.code).toBe(1);
      expect(r.stderr).toBe(
        `imgd: ${join(fx.index, "catalog.duckdb")} is open for writing in another process (PID ${process.pid}), most likely imgd serve or imgd index; stop it first, or search through that server\n`,
      );
    } finally {
      await server.stop();
    }
  });
});
