import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { ConcurrencyGate, type Refusal } from "../../src/server/concurrency-gate.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, photo, PHOTOS, serve, type Fixture } from "./server-harness.ts";

/** Runs `n` requests through the gate that each hold their slot for `heldMs`, so it learns that service time. */
function teach(gate: ConcurrencyGate, n: number, heldMs: number): void {
  for (let i = 0; i < n; i++) {
    expect(gate.acquire()).toBe(true);
    gate.release(heldMs);
  }
}

describe("the admission gate", () => {
  test("without a target: a fixed number run, a fixed number wait in order, the rest are refused at once", async () => {
    const gate = new ConcurrencyGate({ maxInFlight: 2, maxQueued: 2, maxWaitMs: 5_000 });
    expect(gate.acquire()).toBe(true);
    expect(gate.acquire()).toBe(true);
    const order: number[] = [];
    const first = (gate.acquire() as Promise<true | Refusal>).then((r) => (order.push(1), r));
    const second = (gate.acquire() as Promise<true | Refusal>).then((r) => (order.push(2), r));
    expect(gate.queued).toBe(2);
    const refused = gate.acquire();
    expect(refused).toEqual({ retryAfterMs: expect.any(Number) });
    expect((refused as Refusal).retryAfterMs).toBeGreaterThanOrEqual(1000);
    gate.release(5);
    gate.release(5);
    expect(await first).toBe(true);
    expect(await second).toBe(true);
    expect(order).toEqual([1, 2]);
    expect(gate.inFlight).toBe(2);
    expect(gate.rejected).toBe(1);
  });

  test("with a target, an arrival whose predicted wait is over its share is refused on arrival, not after waiting", () => {
    // 40 ms per request, 2 slots: the n-th in line waits ~20n ms; a 200 ms target allows 50 ms of waiting.
    const gate = new ConcurrencyGate({ maxInFlight: 8, maxQueued: 100, maxWaitMs: 5_000, targetMs: 200 });
    teach(gate, 1, 40);
    expect(gate.serviceMs).toBe(40);
    expect(gate.limit).toBe(2);
    gate.acquire();
    gate.acquire();
    const queued = [gate.acquire(), gate.acquire()];
    for (const q of queued) expect(q).toBeInstanceOf(Promise);
    const third = gate.acquire();
    expect(third).not.toBeInstanceOf(Promise);
    expect((third as Refusal).retryAfterMs).toBeGreaterThanOrEqual(1000);
    expect(gate.queued).toBe(2);
  });

  test("a request that has waited its share of the target is refused then, and leaves the queue", async () => {
    const gate = new ConcurrencyGate({ maxInFlight: 1, maxQueued: 10, maxWaitMs: 5_000, targetMs: 40 });
    expect(gate.acquire()).toBe(true); // held and never released
    const t0 = performance.now();
    const outcome = await gate.acquire();
    expect(outcome).toEqual({ retryAfterMs: expect.any(Number) });
    expect(performance.now() - t0).toBeLessThan(1_000);
    expect(gate.queued).toBe(0);
  });

  test("the in-flight limit starts at its floor, grows while requests are quick, shrinks back when they hold their slots too long", () => {
    const gate = new ConcurrencyGate({ maxInFlight: 64, maxQueued: 16, maxWaitMs: 2_000, targetMs: 200 });
    expect(gate.limit).toBe(16);
    teach(gate, 1_000, 2); // 2 ms held against a 10 ms share
    expect(gate.limit).toBe(64);
    teach(gate, 200, 100); // 100 ms held: over the share at any limit
    expect(gate.limit).toBe(16);
    teach(gate, 1_000, 2);
    expect(gate.limit).toBe(64);
    // Without a target the limit is simply the maximum.
    const fixed = new ConcurrencyGate({ maxInFlight: 64, maxQueued: 16, maxWaitMs: 2_000 });
    teach(fixed, 200, 100);
    expect(fixed.limit).toBe(64);
  });
});

describe("admission over HTTP", () => {
  let fx: Fixture;
  beforeAll(async () => {
    fx = await indexedPhotos("admission", ["orange.jpg", "apple.jpg", "home.jpg"]);
  });

  test("a burst far beyond capacity gets 200s and early 429s with Retry-After, never a 5xx, and the counts add up", async () => {
    // Fixed limits (no latency target): 2 run, 2 wait, the rest are refused, whatever this machine's speed. With
    // the adaptive limits a queued image query is refused after 50 ms, so how many succeed would depend on it.
    const server = await serve(fx, { maxConcurrency: 2, maxQueue: 2, maxQueueWaitMs: 10_000, targetLatencyMs: 0 });
    try {
      const body = photo("orange.jpg");
      const timed = async () => {
        const t0 = performance.now();
        const res = await fetch(`${server.url}/api/search`, { method: "POST", body: form([["o.jpg", body, "image"]]) });
        await res.arrayBuffer();
        return { status: res.status, retryAfter: res.headers.get("retry-after"), ms: performance.now() - t0 };
      };
      const answers = await Promise.all(Array.from({ length: 60 }, timed));
      const refused = answers.filter((a) => a.status === 429);
      expect(answers.every((a) => a.status === 200 || a.status === 429)).toBe(true);
      expect(refused.length).toBeGreaterThan(0);
      expect(answers.filter((a) => a.status === 200).length).toBeGreaterThanOrEqual(4);
      for (const r of refused) expect(Number(r.retryAfter)).toBeGreaterThanOrEqual(1);
      // Refused without sitting out maxQueueWaitMs: the gate says no as soon as waiting would not pay.
      expect(Math.max(...refused.map((r) => r.ms))).toBeLessThan(5_000);
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      expect(Number(metrics.match(/imgd_requests_rejected_total (\d+)/)![1])).toBe(refused.length);
      expect((await fetch(`${server.url}/api/search?q=orange&k=1`)).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  test("a page view's burst of thumbnails is served, not refused by the search gate's latency target", async () => {
    const server = await serve(fx);
    try {
      const { hits } = (await (await fetch(`${server.url}/api/search?q=orange&k=3`)).json()) as any;
      // Sizes snap to 128/256/512: the first of each is rendered (tens of ms), the rest wait for or reuse it.
      const sizes = [64, 96, 128, 160, 200, 256, 300, 384, 448, 512];
      const statuses = await Promise.all(
        hits.flatMap((h: any) => sizes.map(async (size) => (await fetch(`${server.url}/api/images/${h.id}/thumb?size=${size}`)).status)),
      );
      expect(statuses).toHaveLength(30);
      expect(statuses.every((s) => s === 200)).toBe(true);
    } finally {
      await server.stop();
    }
  });

  test("ingest runs under its own gate: a long ingest does not take the query slots", async () => {
    const server = await serve(fx, { maxConcurrency: 1, maxQueue: 0 });
    try {
      const ingest = fetch(`${server.url}/api/ingest`, { method: "POST", body: form([["c.png", photo("chelsea.png")], ["s.png", photo("smarties.png")]]) });
      const query = await fetch(`${server.url}/api/search?q=orange&k=1`);
      expect(query.status).toBe(200);
      expect((await ingest).status).toBe(200);
    } finally {
      await server.stop();
    }
  });

  test("an image added through the server is in the very next search, metadata and filters included", async () => {
    const dropbox = join(fx.root, "dropbox");
    mkdirSync(dropbox, { recursive: true });
    cpSync(join(PHOTOS, "rocket.jpg"), join(dropbox, "rocket.jpg"));
    const server = await serve(fx, { roots: [fx.photos, dropbox] });
    try {
      const search = async () =>
        ((await (await fetch(`${server.url}/api/search?q=${encodeURIComponent("a photo")}&k=5&path_prefix=${encodeURIComponent(dropbox)}`)).json()) as any).hits;
      expect(await search()).toEqual([]);
      const res = await fetch(`${server.url}/api/ingest`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ paths: [join(dropbox, "rocket.jpg")] }),
      });
      const { ids } = (await res.json()) as any;
      const hits = await search();
      expect(hits.map((h: any) => h.id)).toEqual(ids);
      expect(ids).toHaveLength(1);
      expect(hits[0]).toMatchObject({ path: join(dropbox, "rocket.jpg"), width: 640, height: 427 });
    } finally {
      await server.stop();
    }
  });
});
