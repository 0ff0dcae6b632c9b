import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { fetchStatus, makePhotos, startCoordinatorProc, startWorkerProc, tempDir, TOKEN, until, type Proc } from "./cluster-harness.ts";
import { mergedPaths, readRows } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

let root: string;
let photos: string[];
beforeAll(async () => {
  root = tempDir("kill");
  photos = await makePhotos(join(root, "photos"), 150, 160);
});

test("a worker SIGKILLed mid-batch: its batch is re-leased, it shows as lost, and every image is in the merged index exactly once", async () => {
  const storage = join(root, "storage");
  const { p: coordinator, url } = await startCoordinatorProc([join(root, "photos")], storage, ["--batch", "5", "--lease-ttl", "1.5", "--serve"]);
  procs.push(coordinator);
  const workers = [startWorkerProc(url), startWorkerProc(url), startWorkerProc(url)];
  procs.push(...workers);
  const victim = workers[0]!;
  const victimId = JSON.stringify(await victim.waitFor(/registered as/)).match(/registered as (\S+)/)![1]!;

  // Kill it while it holds a lease, after it has committed something (so its shard must be merged too).
  await until(async () => {
    const w = (await fetchStatus(url)).workers.find((x) => x.id === victimId);
    return w && w.done > 0 && w.inFlight > 0;
  }, 30_000, "victim mid-batch");
  victim.proc.kill("SIGKILL");
  const killedAt = Date.now();

  const lost = await until(async () => (await fetchStatus(url)).workers.find((w) => w.id === victimId && w.state === "lost"), 15_000, "victim lost");
  expect(lost.rateNow).toBe(0);
  expect(Date.now() - killedAt).toBeLessThan(10_000);

  const done = await until(async () => {
    const s = await fetchStatus(url);
    return s.phase === "merged" ? s : null;
  }, 60_000, "merged");
  expect(done.done).toBe(150);
  expect(done.batches).toEqual({ queued: 0, leased: 0, committed: 30 });
  for (const w of workers.slice(1)) expect(await w.exited).toBe(0);

  // The coordinator answers text queries from the merged index.
  const res = await fetch(`${url}/v1/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${TOKEN}` },
    body: JSON.stringify({ text: "a red photo", k: 5 }),
  });
  const answer = (await res.json()) as { from: string; hits: { path: string; score: number }[] };
  expect(answer.from).toBe("index");
  expect(answer.hits).toHaveLength(5);
  for (const h of answer.hits) expect(photos).toContain(h.path);
  expect(answer.hits[0]!.score).toBeGreaterThanOrEqual(answer.hits[4]!.score);

  coordinator.proc.kill("SIGTERM");
  expect(await coordinator.exited).toBe(130);

  const paths = await mergedPaths(storage);
  expect(paths).toEqual(photos);
  const store = await IndexStore.open(join(storage, "index"), { readOnly: true });
  const stats = await store.stats();
  await store.close();
  expect(stats.indexed).toBe(150);
  expect(stats.vectors).toBe(150);

  // The batch the victim held was leased again to a survivor, and committed by it.
  const releases = await readRows(
    join(storage, "coordinator", "ledger.duckdb"),
    `SELECT b.id, b.committed_by FROM batches b WHERE b.id IN
       (SELECT batch_id FROM leases GROUP BY batch_id HAVING count(*) > 1 AND bool_or(worker_id = '${victimId}'))`,
  );
  expect(releases.length).toBeGreaterThan(0);
  for (const [, by] of releases) expect(by).not.toBe(victimId);
}, 90_000);
