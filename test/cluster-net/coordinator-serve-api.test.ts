// `imgd coordinator --serve` answers imgd serve's API and search page on its own port once the shards are merged,
// behind the mesh token, while the mesh routes go on as before.
import { afterAll, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus, makePhotos, spawnCli, startCoordinatorProc, startWorkerProc, tempDir, TOKEN, until, type Proc } from "./cluster-harness.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));
const auth = { authorization: `Bearer ${TOKEN}` };

test("the coordinator with --serve answers 503 before the merge (but /metrics and /openapi.json), then searches the merged index, serves its files, and takes imgd query --server", async () => {
  const root = tempDir("serve-api");
  const photos = await makePhotos(join(root, "photos"), 8);
  const { p: coordinator, url } = await startCoordinatorProc([join(root, "photos")], join(root, "storage"), ["--batch", "4", "--serve"]);
  procs.push(coordinator);

  const early = await fetch(`${url}/api/search?q=cat`, { headers: auth });
  expect(early.status).toBe(503);
  expect(early.headers.get("retry-after")).toBe("5");
  expect(((await early.json()) as { error: string }).error).toMatch(/^the index is not merged yet \(0\/8 files, indexing\)/);
  // Alive but not ready: /health is 200 as imgd serve's (a liveness probe must not restart it mid-job), /ready a 503
  // in the shape /openapi.json gives it.
  const health = await fetch(`${url}/health`);
  expect([health.status, await health.json()]).toEqual([200, { status: "ok" }]);
  const notReady = await fetch(`${url}/ready`);
  expect(notReady.status).toBe(503);
  expect(await notReady.json()).toEqual({ status: "warming up", error: expect.stringMatching(/^the index is not merged yet \(0\/8 files, indexing\)/) });
  // A Prometheus scrape and the API description answer during the job: the target is up, with no index yet.
  await (await fetch(`${url}/metrics`)).text();
  const metrics = await fetch(`${url}/metrics`);
  expect(metrics.status).toBe(200);
  const scraped = await metrics.text();
  expect(scraped).toMatch(/^imgd_http_requests_total\{route="\/metrics",method="GET",status="200"\} 1$/m);
  expect(scraped).toMatch(/^imgd_http_requests_total\{route="\/ready",method="GET",status="503"\} 1$/m);
  expect(scraped).not.toContain("imgd_index_images");
  const openapi = await fetch(`${url}/openapi.json`);
  expect(openapi.status).toBe(200);
  expect(Object.keys(((await openapi.json()) as { paths: object }).paths)).toContain("/api/search");
  // The page says why there is no search yet, and comes back by itself.
  const page = await fetch(`${url}/`);
  expect([page.status, page.headers.get("content-type"), page.headers.get("retry-after")]).toEqual([503, "text/html; charset=UTF-8", "5"]);
  const text = await page.text();
  expect(text).toContain("the index is not merged yet (0/8 files, indexing)");
  expect(text).toContain('http-equiv="refresh"');
  // A wrong or missing token is refused as the API will refuse it, not told to wait for the merge.
  for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789" }] as Record<string, string>[]) {
    const refused = await fetch(`${url}/api/search?q=cat`, { headers });
    expect(refused.status).toBe(401);
    expect(await refused.json()).toEqual({ error: "missing or wrong bearer token" });
  }

  procs.push(startWorkerProc(url));
  await until(async () => (await fetchStatus(url)).phase === "merged", 30_000, "merged");
  await coordinator.waitFor(/serving the search API and page over the merged index/, 30_000);

  const ready = await fetch(`${url}/ready`);
  expect(ready.status).toBe(200);
  expect(((await ready.json()) as { model: string }).model).toBe("test-clip");
  expect((await fetch(`${url}/api/search?q=a%20photo`)).status).toBe(401);
  const res = await fetch(`${url}/api/search?q=a%20photo&k=20`, { headers: auth });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { hits: { id: number; path: string }[] };
  expect(body.hits.map((r) => r.path).sort()).toEqual([...photos].sort());

  const file = await fetch(`${url}/api/images/${body.hits[0]!.id}/file`, { headers: auth });
  expect(file.status).toBe(200);
  expect(new Uint8Array(await file.arrayBuffer())).toEqual(new Uint8Array(await Bun.file(body.hits[0]!.path).arrayBuffer()));
  expect(await (await fetch(`${url}/`)).text()).toContain("<html");
  // The mesh is untouched: its own routes and its own query.
  expect((await fetchStatus(url)).done).toBe(8);
  const meshQuery = await fetch(`${url}/v1/query`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ text: "a photo", k: 3 }) });
  expect(meshQuery.status).toBe(200);
  expect(((await meshQuery.json()) as { hits: unknown[] }).hits).toHaveLength(3);
  // That query searched the served index: opening its catalog a second time in this process and closing it would have
  // dropped the server's DuckDB lock, and let another process write the catalog beside the server.
  const index = join(root, "storage", "index");
  const info = spawnCli(["info", "--index", index]);
  expect(await info.exited).toBe(1);
  expect(info.stderr.join("\n")).toContain(`open for writing in another process (PID ${coordinator.proc.pid})`);

  const query = spawnCli(["query", "a photo", "--server", url, "--token", TOKEN, "-k", "3", "--json"]);
  expect(await query.exited).toBe(0);
  const { hits } = JSON.parse(query.stdout.join("\n")) as { hits: { path: string }[] };
  expect(hits).toHaveLength(3);
  for (const h of hits) expect(photos).toContain(h.path);

  // The coordinator holds the merged catalog open, as imgd serve does: a plain query on it goes through the server.
  const local = spawnCli(["query", "a photo", "--index", index, "--token", TOKEN, "-k", "3"]);
  expect(await local.exited).toBe(0);
  expect(local.stdout).toHaveLength(3);
  for (const line of local.stdout) expect(photos).toContain(line.trim().split(/\s+/)[2]);
  expect(local.stderr.join("\n")).toContain(`through imgd serve (PID ${coordinator.proc.pid})`);

  coordinator.proc.kill("SIGTERM");
  expect(await coordinator.exited).toBe(130);
  expect(existsSync(join(index, "server.json"))).toBe(false);
}, 90_000);

test("a coordinator with --serve stopped before its merge exits at once", async () => {
  const root = tempDir("serve-api-stop");
  await makePhotos(join(root, "photos"), 2);
  const { p: coordinator } = await startCoordinatorProc([join(root, "photos")], join(root, "storage"), ["--serve"]);
  procs.push(coordinator);
  const t0 = Date.now();
  coordinator.proc.kill("SIGTERM");
  expect(await coordinator.exited).toBe(130);
  expect(Date.now() - t0).toBeLessThan(5_000);
}, 30_000);
