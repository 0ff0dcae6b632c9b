// `imgd bench ingest` through the real CLI against a real server on 127.0.0.1 (the app imgd serve runs).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { RunningServer } from "../../src/server/server.ts";
import { indexedPhotos, serve, type Fixture } from "../server/server-harness.ts";
import { copyPhotos, imgd } from "./cli-harness.ts";

const UPLOADS = ["chelsea.png", "fruits.jpg", "rocket.jpg", "smarties.png", "coffee.png"];

describe("imgd bench ingest", () => {
  let fx: Fixture;
  let server: RunningServer;
  let upload: string;

  beforeAll(async () => {
    fx = await indexedPhotos("bench-ingest", ["orange.jpg"]);
    upload = join(fx.root, "upload");
    mkdirSync(upload);
    copyPhotos(UPLOADS, upload);
    server = await serve(fx, { token: "s3cret" });
  }, 120_000);
  afterAll(() => server?.stop());

  const bench = (...extra: string[]) =>
    imgd(["bench", "ingest", "--dir", upload, "--url", server.url, "--workers", "2", "--batch", "2", "--queue", "4", "--report", "1", ...extra]);

  test("a timed run uploads batches concurrently and sums them up: rates, latency percentiles, success, server RSS", async () => {
    const r = await bench("--duration", "3", "--token", "s3cret", "--json");
    expect(r.code).toBe(0);
    const s = JSON.parse(r.stdout);
    expect(s.files).toBe(UPLOADS.length);
    expect(s.batchSize).toBe(2);
    expect(s.requests.sent).toBeGreaterThan(Math.ceil(UPLOADS.length / 2)); // the file list was repeated
    expect(s.requests.failed).toBe(0);
    expect(s.requests.ok + s.requests.cutOff).toBe(s.requests.sent);
    expect(s.successRate).toBe(1);
    // Requests in flight at the deadline are cut off, so the run ends on time.
    expect(s.elapsedSec).toBeGreaterThanOrEqual(3);
    expect(s.elapsedSec).toBeLessThan(4);
    expect(s.imgPerSec).toBeCloseTo(s.images.answered / s.elapsedSec, 5);
    expect(s.latencyMs.p50).toBeGreaterThan(0);
    expect(s.latencyMs.p50).toBeLessThanOrEqual(s.latencyMs.p95);
    expect(s.latencyMs.p95).toBeLessThanOrEqual(s.latencyMs.p99);
    expect(s.latencyMs.p99).toBeLessThanOrEqual(s.latencyMs.max);
    // Repeats carry a pass marker, so they are indexed as new files, not skipped as exact duplicates.
    expect(s.images.processed).toBe(s.images.answered);
    expect(s.images.duplicates).toBe(0);
    expect(s.serverRss.samples).toBeGreaterThanOrEqual(2);
    expect(s.serverRss.startBytes).toBeGreaterThan(10 * 2 ** 20);
    expect(s.serverRss.peakBytes).toBeGreaterThanOrEqual(Math.max(s.serverRss.startBytes, s.serverRss.endBytes));
    // Progress lines go to stderr under --json, about one per --report seconds.
    const lines = r.stderr.split("\n").filter((l) => l.startsWith("[bench ingest]"));
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(lines[0]).toMatch(/img\/s .* req\/s .* batch p50 \d+ ms p99 \d+ ms .* server rss \d+ MiB/);
  }, 60_000);

  test("without --duration every file is sent once; the human summary names every figure", async () => {
    const r = await bench("--token", "s3cret");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`ingest benchmark: ${UPLOADS.length} files, 3 requests of up to 2 images`);
    expect(r.stdout).toMatch(/throughput\s+[\d.]+ img\/s, [\d.]+ req\/s/);
    expect(r.stdout).toMatch(/batch latency\s+p50 \d+ ms\s+p95 \d+ ms\s+p99 \d+ ms/);
    expect(r.stdout).toContain("success rate   100.0 % (3 ok, 0 failed; 0 answered 429 and were retried; 0 cut off");
    // The first pass of these files was indexed by the previous test: the server now finds them exact duplicates.
    expect(r.stdout).toContain(`${UPLOADS.length} sent, ${UPLOADS.length} answered: 0 indexed, ${UPLOADS.length} exact duplicates`);
    expect(r.stdout).toMatch(/server rss\s+start \d+ MiB\s+peak \d+ MiB\s+end \d+ MiB/);
  }, 60_000);

  test("refused requests count as failures, are named, and make the exit code 1", async () => {
    const r = await bench("--token", "wrong");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("success rate   0.0 % (0 ok, 3 failed");
    expect(r.stdout).toContain("failure: HTTP 401: missing or wrong bearer token");
  }, 60_000);

  test("missing flags and an empty folder are clear errors", async () => {
    const noUrl = await imgd(["bench", "ingest", "--dir", upload]);
    expect(noUrl.code).toBe(2);
    expect(noUrl.stderr).toContain("bench ingest needs --url URL");
    const unknown = await imgd(["bench", "search"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown benchmark "search"');
    const empty = join(fx.root, "empty");
    mkdirSync(empty);
    const none = await imgd(["bench", "ingest", "--dir", empty, "--url", server.url]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain(`no images under ${empty}`);
  });
});
