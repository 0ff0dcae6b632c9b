import { afterAll, expect, test } from "bun:test";
import { join } from "node:path";
import { BUN, CLI, fetchStatus, makePhotos, MODELS, startWorkerProc, tempDir, TOKEN, until, type Proc } from "../cluster-net/cluster-harness.ts";

const session = `imgd-tui-${process.pid}`;
const procs: Proc[] = [];
afterAll(() => {
  Bun.spawnSync(["tmux", "kill-session", "-t", session]);
  procs.forEach((p) => p.proc.kill("SIGKILL"));
});

const tmux = (...args: string[]) => Bun.spawnSync(["tmux", ...args], { stderr: "pipe" });
const screen = () => tmux("capture-pane", "-p", "-t", session).stdout.toString();
const showing = (what: string | RegExp, timeoutMs = 15_000) =>
  until(async () => (typeof what === "string" ? screen().includes(what) : what.test(screen())), timeoutMs, `${what}`).catch((e) => {
    throw new Error(`${e.message}; the screen shows:\n${screen()}`);
  });

test("in a real terminal the coordinator draws its table, pauses on p and leaves on q once its workers have stopped", async () => {
  const root = tempDir("tui");
  await makePhotos(join(root, "photos"), 40, 96);
  const port = 20000 + (process.pid % 20000);
  const cmd = [
    "env -u CI", `IMGD_MODELS=${MODELS}`, BUN, CLI, "coordinator", join(root, "photos"), "--storage", join(root, "storage"),
    "--port", String(port), "--bind", "127.0.0.1", "--token", TOKEN, "--model", "test-clip", "--batch", "5", "--serve",
    `; echo EXITED $?; sleep 30`,
  ].join(" ");
  expect(tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd).exitCode).toBe(0);
  const url = `http://127.0.0.1:${port}`;
  await until(() => fetchStatus(url), 20_000, "coordinator up");
  await showing("waiting for workers");

  // Pause first, so the worker stays registered and idle while we look at it.
  tmux("send-keys", "-t", session, "p");
  await showing("PAUSED");
  expect((await fetchStatus(url)).paused).toBe(true);
  const worker = startWorkerProc(url);
  procs.push(worker);
  await showing(/\S+-\d+\s+\S+\s+idle/);
  expect(screen()).toMatch(/worker\s+host\s+state\s+img\/s/);
  expect(screen()).toContain("total 0/40 0.0%");

  tmux("send-keys", "-t", session, "p");
  await showing("total 40/40 100.0%");

  tmux("send-keys", "-t", session, "q");
  // One q: the idle worker is drained, leaves, and the coordinator exits cleanly after it.
  await showing("again: quit now");
  await showing("EXITED 0");
  expect(await worker.exited).toBe(0);
}, 90_000);

test("in a real terminal the coordinator says how the job ended below its last frame: the final totals and the merge", async () => {
  const root = tempDir("tui-end");
  await makePhotos(join(root, "photos"), 12);
  const storage = join(root, "storage");
  const port = 20000 + ((process.pid + 1) % 20000);
  const cmd = [
    "env -u CI", `IMGD_MODELS=${MODELS}`, BUN, CLI, "coordinator", join(root, "photos"), "--storage", storage,
    "--port", String(port), "--bind", "127.0.0.1", "--token", TOKEN, "--model", "test-clip", "--batch", "4",
    `; echo EXITED $?; sleep 30`,
  ].join(" ");
  Bun.spawnSync(["tmux", "kill-session", "-t", session]);
  expect(tmux("new-session", "-d", "-s", session, "-x", "160", "-y", "40", cmd).exitCode).toBe(0);
  const url = `http://127.0.0.1:${port}`;
  await until(() => fetchStatus(url), 20_000, "coordinator up");
  const worker = startWorkerProc(url);
  procs.push(worker);
  await showing("EXITED 0", 30_000);
  expect(await worker.exited).toBe(0);
  // The table's last frame was drawn before the merge; what follows it says the job is done and where its index is.
  const after = screen().split("q quit").at(-1)!;
  expect(after).toContain("[cluster] 12/12 100.0%");
  expect(after).toContain(`merged 1 shard into ${join(storage, "index")}: 12 indexed, 0 failed`);
}, 60_000);
