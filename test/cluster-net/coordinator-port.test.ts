import { afterAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fetchStatus, makePhotos, spawnCli, startCoordinatorProc, tempDir, TOKEN } from "./cluster-harness.ts";

const taken = Bun.serve({ port: 0, hostname: "127.0.0.1", fetch: () => new Response("someone else") });
afterAll(() => taken.stop(true));

const coordinator = (root: string, port: string) =>
  spawnCli(["coordinator", join(root, "photos"), "--storage", join(root, "storage"), "--port", port, "--bind", "127.0.0.1", "--token", TOKEN, "--model", "test-clip"]);

test("a coordinator whose port is in use fails before it writes a job to the storage", async () => {
  const root = tempDir("port-taken");
  await makePhotos(join(root, "photos"), 3);
  const p = coordinator(root, String(taken.port));
  expect(await p.exited).toBe(1);
  expect(p.stderr.join("\n")).toContain(`cannot listen on 127.0.0.1:${taken.port}`);
  expect(p.stderr.join("\n")).not.toContain("new job");
  expect(existsSync(join(root, "storage"))).toBe(false);
}, 30_000);

test("a port out of range is a usage error, and nothing is written", async () => {
  const root = tempDir("port-range");
  await makePhotos(join(root, "photos"), 3);
  const p = coordinator(root, "70000");
  expect(await p.exited).toBe(2);
  expect(p.stderr[0]).toBe('imgd: --port takes a whole number from 0 to 65535, got "70000"');
  expect(existsSync(join(root, "storage"))).toBe(false);
}, 30_000);

test("a coordinator whose photo root does not exist fails naming it, and writes nothing under --storage", async () => {
  const root = tempDir("root-missing");
  const p = coordinator(root, "0");
  expect(await p.exited).toBe(1);
  expect(p.stderr.join("\n")).toContain(`no such file or directory: ${join(root, "photos")}`);
  expect(existsSync(join(root, "storage"))).toBe(false);
}, 30_000);

test("a coordinator whose roots hold no image (a share not mounted) fails saying so, and writes nothing under --storage", async () => {
  const root = tempDir("root-empty");
  mkdirSync(join(root, "photos"));
  writeFileSync(join(root, "photos", "notes.txt"), "not an image");
  const p = coordinator(root, "0");
  expect(await p.exited).toBe(1);
  expect(p.stderr.join("\n")).toContain(`imgd: no images under ${join(root, "photos")}: nothing to index (is the share mounted?)`);
  expect(existsSync(join(root, "storage"))).toBe(false);
}, 30_000);

test("a second coordinator on the same storage is refused, naming the first one's pid, and the job is left alone", async () => {
  const root = tempDir("two-coordinators");
  await makePhotos(join(root, "photos"), 3);
  const first = await startCoordinatorProc([join(root, "photos")], join(root, "storage"), ["--serve"]);
  try {
    const second = coordinator(root, "0");
    expect(await second.exited).toBe(1);
    expect(second.stderr.join("\n")).toContain(
      `imgd: another coordinator (pid ${first.p.proc.pid}) runs the job in ${join(root, "storage")}: stop it first, or give another --storage`,
    );
    expect((await fetchStatus(first.url)).total).toBe(3);
  } finally {
    first.p.proc.kill("SIGKILL");
  }
}, 30_000);
