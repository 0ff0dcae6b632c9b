// `imgd serve` as users start it: the real CLI in its own process, flags parsed, models warmed, SIGTERM to stop.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { indexedPhotos, type Fixture } from "../server/server-harness.ts";
import { imgd, MODELS, REPO } from "./cli-harness.ts";

describe("imgd serve", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await indexedPhotos("serve-cli", ["orange.jpg", "home.jpg"]);
  }, 60_000);
  afterAll(() => rmSync(fx.root, { recursive: true, force: true }));

  /** `imgd serve` on the fixture's index, once it has said `until`. */
  async function startServe(until = "imgd: ready") {
    const proc = Bun.spawn(
      [process.execPath, join(REPO, "src/cli/main.ts"), "serve", "--index", fx.index, "--models", MODELS, "--port", "0",
        "--log", join(fx.root, "serve.log"), "--target-latency-ms", "0", "--max-concurrency", "4"],
      { stdout: "ignore", stderr: "pipe" },
    );
    const reader = proc.stderr.getReader();
    let said = "";
    while (!said.includes(until)) {
      const { done, value } = await reader.read();
      if (done) throw new Error(`serve exited before saying ${until}:\n${said}`);
      said += new TextDecoder().decode(value);
    }
    return { proc, url: said.match(/serving (http:\/\/127\.0\.0\.1:\d+)/)![1]! };
  }

  test("starts on the index, says when it is ready, answers a search, and exits 0 on SIGTERM", async () => {
    const { proc, url } = await startServe();
    expect((await fetch(`${url}/ready`)).status).toBe(200);
    const hits = (await (await fetch(`${url}/api/search?q=blue%20sky&k=1`)).json()) as { hits: { path: string }[] };
    expect(hits.hits[0]!.path).toEndWith("home.jpg");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    // Its address goes with it: the next query opens the index itself.
    expect(existsSync(join(fx.index, "server.json"))).toBe(false);
  }, 60_000);

  test("a SIGTERM during the warm-up, as soon as it says where it serves, is a clean stop: exit 0, no server.json left", async () => {
    const { proc } = await startServe("imgd: serving");
    proc.kill("SIGTERM");
    expect(await proc.exited).toBe(0);
    expect(existsSync(join(fx.index, "server.json"))).toBe(false);
  }, 60_000);

  test("while it serves, a query goes through it, and every other command that opens the index names its PID and what to do", async () => {
    const { proc } = await startServe();
    try {
      const query = await imgd(["query", "blue sky", "--index", fx.index, "-k", "1"]);
      expect([query.code, query.stdout]).toEqual([0, expect.stringContaining("home.jpg")]);
      expect(query.stderr).toContain(`through imgd serve (PID ${proc.pid})`);
      for (const args of [["dups"], ["persons", "list"], ["info"]]) {
        const r = await imgd([...args, "--index", fx.index]);
        expect([args[0], r.code]).toEqual([args[0], 1]);
        expect(r.stderr).toContain(`catalog.duckdb is open for writing in another process (PID ${proc.pid}), most likely imgd serve`);
      }
    } finally {
      proc.kill("SIGTERM");
      await proc.exited;
    }
  }, 60_000);

  test("an empty --token is a usage error, not a server open to anyone (a --token \"$VAR\" whose variable is unset)", async () => {
    const r = await imgd(["serve", "--index", fx.index, "--port", "0", "--token", ""]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--token is empty");
  });

  test("a --cors that is not an origin is a usage error: it would never match a browser's Origin", async () => {
    for (const cors of ["notaurl", "https://app.example.com/", "https://app.example.com/path", "ftp://app.example.com"]) {
      const r = await imgd(["serve", "--index", fx.index, "--port", "0", "--cors", cors]);
      expect([cors, r.code]).toEqual([cors, 2]);
      expect(r.stderr).toContain(`--cors takes an origin like https://app.example.com or http://localhost:3000, not "${cors}"`);
    }
  });

  test("a --root that does not exist or is not a directory is refused by name; the server does not start without it", async () => {
    const missing = join(fx.root, "no-such-folder");
    const file = join(fx.photos, "orange.jpg");
    const gone = await imgd(["serve", "--index", fx.index, "--port", "0", "--root", fx.photos, "--root", missing]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`root ${missing} does not exist`);
    const notDir = await imgd(["serve", "--index", fx.index, "--port", "0", "--root", file]);
    expect(notDir.code).toBe(1);
    expect(notDir.stderr).toContain(`root ${file} is not a directory`);
  });

  test("an address it cannot listen on is named with the reason", async () => {
    const r = await imgd(["serve", "--index", fx.index, "--port", "0", "--host", "999.1.1.1"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("cannot listen on 999.1.1.1:0");
  });

  test("a bad --target-latency-ms is a usage error, before any model is opened", async () => {
    const r = await imgd(["serve", "--index", fx.index, "--target-latency-ms", "soon"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("target-latency-ms");
  });
});
