// Uploads that trickle in, or stop half way, must not take the slots searches need, nor hold unbounded memory.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { Socket } from "bun";
import { BodyBudget } from "../../src/server/middleware/buffered-body.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { form, indexedPhotos, photo, serve, type Fixture } from "./server-harness.ts";

let fx: Fixture;
let server: RunningServer;
const sockets: Socket[] = [];

beforeAll(async () => {
  fx = await indexedPhotos("slow-uploads", ["home.jpg", "orange.jpg"]);
  server = await serve(fx, { maxConcurrency: 4, maxQueue: 1, maxQueueWaitMs: 500, limits: { maxBufferedBytes: 256 * 1024 } });
});
afterAll(async () => {
  for (const s of sockets) s.end();
  await server?.stop();
});

/** Opens a connection and sends the head of a POST whose body is `declared` bytes, then `sent` of them. */
async function startUpload(path: string, declared: number, sent: number): Promise<Socket> {
  const { port } = new URL(server.url);
  const socket = await Bun.connect({ hostname: "127.0.0.1", port: Number(port), socket: { data() {} } });
  sockets.push(socket);
  const boundary = "slowupload";
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=${boundary}\r\nContent-Length: ${declared}\r\n\r\n`,
  );
  socket.write(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n`);
  if (sent > 0) socket.write(new Uint8Array(sent));
  return socket;
}

const statusesOf = (rs: Response[]) => rs.map((r) => r.status);

describe("slow and broken uploads", () => {
  test("a dozen uploads that trickle in leave every search slot free", async () => {
    const trickling: Socket[] = [];
    for (let i = 0; i < 12; i++) trickling.push(await startUpload("/api/search", 20_000, 10));
    await Bun.sleep(200);
    // Read inside the gate, each of them held a slot until its last byte came: every search here was a 429.
    const searches: Response[] = [];
    for (let i = 0; i < 5; i++) searches.push(await fetch(`${server.url}/api/search?q=blue%20sky&k=1`));
    expect(statusesOf(searches)).toEqual(Array(5).fill(200));
    for (const socket of trickling) socket.end();
    await Bun.sleep(200);
  });

  test("while the budget for bodies is taken an upload waits its turn, then gets 503 with Retry-After; it frees up", async () => {
    // Declares more than the whole budget, so it reserves all of it until it is sent or cut off.
    const hog = await startUpload("/api/ingest", 1_000_000, 1000);
    await Bun.sleep(200);
    const upload = () => fetch(`${server.url}/api/search`, { method: "POST", body: form([["q.jpg", photo("orange.jpg"), "image"]]) });
    const refused = await upload();
    expect(refused.status).toBe(503);
    expect(refused.headers.get("retry-after")).toBe("1");
    expect(((await refused.json()) as { error: string }).error).toContain("too many uploads in progress");

    const waiting = upload();
    await Bun.sleep(100);
    hog.end();
    expect((await waiting).status).toBe(200);
  });

  test("a client that hangs up half way through an upload costs no 5xx, and the server keeps serving", async () => {
    const cutOffs = async () => {
      const metrics = await (await fetch(`${server.url}/metrics`)).text();
      return Number(/imgd_http_requests_total\{route="\/api\/ingest",method="POST",status="400"\} (\d+)/.exec(metrics)?.[1] ?? 0);
    };
    const before = await cutOffs();
    const cut = await startUpload("/api/ingest", 50_000, 20_000);
    await Bun.sleep(100);
    cut.end();
    await Bun.sleep(300);
    expect((await fetch(`${server.url}/api/search?q=orange&k=1`)).status).toBe(200);
    expect(await cutOffs()).toBe(before + 1);
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics.match(/^.*status="50[0-2]".*$/m)?.[0]).toBeUndefined();
  });
});

test("the body budget admits in arrival order, so a large upload is not passed for ever by small ones", async () => {
  const budget = new BodyBudget(100);
  expect(await budget.take(60, 1000)).toBe(true);
  const big = budget.take(80, 1000);
  let smallIn = false;
  const small = budget.take(10, 1000).then((ok) => (smallIn = ok));
  await Bun.sleep(10);
  expect(smallIn).toBe(false);
  budget.give(60);
  expect([await big, await small]).toEqual([true, true]);
  expect(budget.held).toBe(90);
  expect(await budget.take(20, 20)).toBe(false);
  expect(budget.held).toBe(90);
  expect(await budget.take(500, 20)).toBe(false);
  budget.give(90);
  expect(await budget.take(500, 20)).toBe(true);
  expect(budget.held).toBe(100);
});

/** A raw connection to `server`, with the head of what it answered once that has come (within 5 s). */
async function rawConnection(server: RunningServer) {
  const { port } = new URL(server.url);
  let answer = "";
  const socket = await Bun.connect({
    hostname: "127.0.0.1",
    port: Number(port),
    socket: { data: (_s, chunk) => void (answer += new TextDecoder().decode(chunk)) },
  });
  sockets.push(socket);
  const answered = async () => {
    const t0 = performance.now();
    while (!answer.includes("\r\n\r\n") && performance.now() - t0 < 5000) await Bun.sleep(20);
    return answer;
  };
  return { socket, answered };
}

describe("an upload slower than the minimum pace", () => {
  let paced: RunningServer;
  beforeAll(async () => {
    paced = await serve(fx, { limits: { maxBufferedBytes: 256 * 1024, uploadGraceMs: 300, minUploadBytesPerSecond: 64 * 1024 } });
  });
  afterAll(() => paced.stop());

  test("is cut off with 408 once past its grace, and the budget it held goes to the next upload", async () => {
    // Declares more than the whole budget and sends a trickle: before the pace it held every upload off for as
    // long as its client liked.
    const { socket, answered } = await rawConnection(paced);
    socket.write(`POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 1000000\r\n\r\n`);
    socket.write(new Uint8Array(1000));
    const t0 = performance.now();
    const answer = await answered();
    expect(answer).toStartWith("HTTP/1.1 408");
    expect(answer).toContain("upload too slow: 1000 bytes in");
    expect(performance.now() - t0).toBeLessThan(2000);

    const upload = await fetch(`${paced.url}/api/search`, { method: "POST", body: form([["q.jpg", photo("orange.jpg"), "image"]]) });
    expect(upload.status).toBe(200);
  });

  test("a body that keeps up the pace, however long it takes, is read whole", async () => {
    const { socket, answered } = await rawConnection(paced);
    const body = `{"paths": ["/no/such/file.jpg"]}`.padEnd(120_000, " ");
    socket.write(`POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    // 120 kB over ~1.2 s at ~100 KiB/s: above the pace, and well past the grace.
    for (let i = 0; i < body.length; i += 10_000) {
      socket.write(body.slice(i, i + 10_000));
      await Bun.sleep(100);
    }
    const answer = await answered();
    // Read whole and handled: the ingest's own answer about the path, not the pace's.
    expect(answer).toStartWith("HTTP/1.1 422");
    expect(answer).toContain('"reason":"outside-roots"');
  });
});
