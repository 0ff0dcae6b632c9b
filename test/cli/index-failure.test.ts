import { expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { copyPhotos, imgd, imgdJson, MODELS, PHOTOS, REPO, tempDir, type CliResult } from "./cli-harness.ts";

test("photos whose EXIF date the calendar does not have (Feb 31, Apr 31) are indexed without a date", async () => {
  const root = tempDir("bad-dates");
  const photos = join(root, "photos");
  mkdirSync(photos, { recursive: true });
  const jpeg = (date: string) =>
    loadSharp()({ create: { width: 64, height: 48, channels: 3, background: { r: 90, g: 120, b: 200 } } })
      .withExif({ IFD2: { DateTimeOriginal: date } })
      .jpeg()
      .toFile(join(photos, `${date.slice(0, 10).replaceAll(":", "-")}.jpg`));
  await Promise.all(["2024:02:31 10:00:00", "2023:04:31 08:00:00", "2024:02:29 09:00:00"].map(jpeg));
  const report = await imgdJson(["index", photos, "--index", join(root, "index"), "--model", "test-clip"]);
  expect(report.embedded).toBe(3);
  expect(report.failed).toBe(0);
  const listed = await imgd(["query", "--index", join(root, "index"), "--after", "2024-02-29", "--before", "2024-03-01", "-k", "5"]);
  expect(listed.stdout).toContain("2024-02-29.jpg");
  expect(listed.stdout).not.toContain("2024-02-31.jpg");
}, 30_000);

test("a run whose catalog cannot be written exits with the error instead of hanging on the image tower's thread", async () => {
  const root = tempDir("write-fails");
  const photos = join(root, "photos");
  mkdirSync(photos, { recursive: true });
  copyPhotos(["orange.jpg", "apple.jpg"], photos);
  const index = join(root, "index");
  await imgdJson(["index", photos, "--index", index, "--model", "test-clip"]);
  for (let i = 0; i < 8; i++) copyFileSync(join(PHOTOS, "fruits.jpg"), join(photos, `fruits-${i}.jpg`));
  // A file size limit stands in for a full disk: the catalog's write-ahead log cannot grow past 8 KiB.
  const args = [process.execPath, join(REPO, "src/cli/main.ts"), "index", photos, "--index", index, "--model", "test-clip"];
  const proc = Bun.spawn(["sh", "-c", `trap '' XFSZ; ulimit -f 16; exec "$@"`, "sh", ...args], {
    env: { ...process.env, IMGD_MODELS: MODELS, CI: "true" },
    stdout: "pipe",
    stderr: "pipe",
  });
  const timer = setTimeout(() => proc.kill("SIGKILL"), 15_000);
  const code = await proc.exited;
  clearTimeout(timer);
  expect(code).toBe(1);
  expect(await new Response(proc.stderr).text()).toContain("File too large");
}, 30_000);


/**
 * `imgd args` as a user for whom file modes count: as root (who reads any file whatever its mode) the run is made as
 * nobody, with `root` (a temp dir, handed over to nobody on the first call) as its home.
 */
async function imgdUnprivileged(root: string, args: string[]): Promise<CliResult> {
  const asRoot = process.getuid?.() === 0;
  // Once: a chown changes the files' ctimes, which a later run would take for touches.
  if (asRoot && statSync(root).uid !== 65534) Bun.spawnSync(["chown", "-R", "65534:65534", root]);
  const cmd = [process.execPath, join(REPO, "src/cli/main.ts"), ...args];
  const proc = Bun.spawn(asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", ...cmd] : cmd, {
    env: { ...process.env, IMGD_MODELS: MODELS, CI: "true", HOME: root },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
  return { code, stdout, stderr };
}

/** `imgdUnprivileged`'s stdout, for a run that must succeed. */
async function imgdUnprivilegedOk(root: string, args: string[]): Promise<string> {
  const r = await imgdUnprivileged(root, args);
  if (r.code !== 0) throw new Error(`imgd ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return r.stdout;
}

test("an indexed photo that cannot be read for a while (chmod 000) keeps its row and vector, and is read again later", async () => {
  const root = tempDir("unreadable-indexed");
  const photos = join(root, "photos");
  const index = join(root, "index");
  mkdirSync(photos, { recursive: true });
  copyPhotos(["orange.jpg", "apple.jpg"], photos);
  const locked = join(photos, "orange.jpg");
  const run = async () => JSON.parse(await imgdUnprivilegedOk(root, ["index", photos, "--index", index, "--model", "test-clip", "--json"]));
  const rows = async () => {
    const store = await IndexStore.open(index, { readOnly: true });
    try {
      const f = (await store.knownFiles()).get(locked)!;
      return { id: f.id, status: f.status, embedded: (await store.getEmbedding(f.id)) !== null };
    } finally {
      await store.close();
    }
  };
  expect((await run()).embedded).toBe(2);
  const before = await rows();
  expect(before).toEqual({ id: before.id, status: "indexed", embedded: true });

  chmodSync(locked, 0o000);
  const lockedRun = await run();
  expect([lockedRun.failed, lockedRun.embedded, lockedRun.unchanged]).toEqual([0, 0, 1]);
  expect(lockedRun.unreadableKept).toEqual([{ path: locked, error: expect.stringContaining("EACCES") }]);
  expect(await rows()).toEqual(before);

  chmodSync(locked, 0o644);
  const readable = await run();
  expect([readable.touched, readable.embedded, readable.failed]).toEqual([1, 0, 0]);
  expect(await rows()).toEqual(before);
}, 60_000);

test("a folder the scan cannot read is listed on one line, whatever its name holds", async () => {
  const root = tempDir("unreadable-folder");
  const photos = join(root, "photos");
  const locked = join(photos, "trip\nday 2");
  mkdirSync(locked, { recursive: true });
  copyPhotos(["orange.jpg"], photos);
  copyPhotos(["apple.jpg"], locked);
  await imgdUnprivilegedOk(root, ["index", photos, "--index", join(root, "index"), "--model", "test-clip", "-q"]);
  chmodSync(locked, 0o000);
  const out = await imgdUnprivilegedOk(root, ["index", photos, "--index", join(root, "index"), "--model", "test-clip", "-q"]);
  const lines = out.split("\n");
  const at = lines.findIndex((l) => l.startsWith("could not read 1 paths"));
  expect(lines[at + 1]).toBe(`  EACCES ${JSON.stringify(locked)}`);
}, 60_000);

test("a photo given to query --image that cannot be read says so, not that it is no image", async () => {
  const root = tempDir("unreadable-query");
  const photos = join(root, "photos");
  mkdirSync(photos, { recursive: true });
  copyPhotos(["orange.jpg", "apple.jpg"], photos);
  await imgdUnprivilegedOk(root, ["index", photos, "--index", join(root, "index"), "--model", "test-clip", "-q"]);
  const locked = join(photos, "apple.jpg");
  chmodSync(locked, 0o000);
  const r = await imgdUnprivileged(root, ["query", "--image", locked, "--index", join(root, "index")]);
  expect(r.code).toBe(1);
  expect(r.stderr).toContain(`${locked}: cannot read the file (EACCES`);
}, 60_000);
