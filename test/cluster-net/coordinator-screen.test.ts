import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, CLI, MODELS, REPO, TOKEN, makePhotos, startWorkerProc, tempDir, type Proc } from "./cluster-harness.ts";

const procs: { kill(signal?: number | NodeJS.Signals): void }[] = [];
afterAll(() => procs.forEach((p) => p.kill("SIGKILL")));

// The coordinator on a terminal draws its live table; util-linux's `script` gives it one.
const hasScript = Bun.which("script") !== null;

test.skipIf(!hasScript)("on a terminal, the coordinator says how the job ended below its last frame: the merge and the final totals", async () => {
  const root = tempDir("screen");
  await makePhotos(join(root, "photos"), 12);
  const storage = join(root, "storage");
  const port = 43000 + Math.floor(Math.random() * 900);
  const command = [BUN, CLI, "coordinator", join(root, "photos"), "--storage", storage, "--port", String(port), "--bind", "127.0.0.1", "--token", TOKEN, "--model", "test-clip", "--batch", "4"]
    .map((a) => `'${a}'`)
    .join(" ");
  const { CI: _, ...env } = process.env;
  const screen = Bun.spawn(["script", "-qefc", `stty cols 140 rows 40; ${command}`, "/dev/null"], {
    cwd: REPO,
    env: { ...env, IMGD_MODELS: MODELS, TERM: "xterm" },
    stdin: "pipe",
    stdout: "pipe",
    stderr: "pipe",
  });
  procs.push(screen);
  const url = `http://127.0.0.1:${port}`;
  let worker: Proc | null = null;
  for (let i = 0; i < 200 && !worker; i++) {
    await Bun.sleep(100);
    if (await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.ok, () => false)) worker = startWorkerProc(url);
  }
  procs.push(worker!.proc);
  expect(await screen.exited).toBe(0);
  expect(await worker!.exited).toBe(0);
  const shown = (await new Response(screen.stdout).text()).replace(/\x1b\[[0-9;?]*[A-Za-z]/g, "");
  const tail = shown.slice(shown.lastIndexOf("q quit"));
  expect(tail).toContain("[cluster] 12/12 100.0%");
  expect(tail).toContain(`merged 1 shards into ${join(storage, "index")}: 12 indexed, 0 failed`);
}, 60_000);
