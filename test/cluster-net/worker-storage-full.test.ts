import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, CLI, makePhotos, MODELS, REPO, startCoordinatorProc, startWorkerProc, tempDir, TOKEN, type Proc } from "./cluster-harness.ts";
import { mergedPaths } from "./helpers-db.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("a worker whose shard cannot be written (a full disk) leaves at once, handing its batches back, and the job completes without loss", async () => {
  const root = tempDir("storage-full");
  const photos = await makePhotos(join(root, "photos"), 60, 160);
  const storage = join(root, "storage");
  // A long lease: without leaving, the failed worker's batches would wait out 60 s before anyone redid them.
  const { p: coordinator, url } = await startCoordinatorProc([join(root, "photos")], storage, ["--batch", "5", "--lease-ttl", "60"]);
  procs.push(coordinator);

  // A file size limit stands in for a full disk, without root: its writes past 1.5 MB fail with EFBIG ("File too
  // large"), which DuckDB reports as ENOSPC is. sh counts ulimit -f in 512-byte blocks (bash does so as sh too).
  const full = Bun.spawn(["sh", "-c", `trap '' XFSZ; ulimit -f 3000; exec "$@"`, "sh", BUN, CLI, "worker", "--coordinator", url, "--threads", "1", "--host", "full"], {
    cwd: REPO,
    env: { ...process.env, CI: "true", IMGD_MODELS: MODELS, IMGD_TOKEN: TOKEN },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  expect(await full.exited).toBe(1);
  expect(await new Response(full.stderr).text()).toContain("storage/shards/full-1/catalog.duckdb\": File too large");
  const left = await coordinator.waitFor(/worker full-1 left/, 5_000);
  expect(left).toMatch(/worker full-1 left: stopped by an error: .*File too large; batches [\d, ]+ back in the queue$/);

  const worker = startWorkerProc(url);
  procs.push(worker);
  expect(await worker.exited).toBe(0);
  expect(await coordinator.exited).toBe(0);
  expect(await mergedPaths(storage)).toEqual(photos);
}, 90_000);
