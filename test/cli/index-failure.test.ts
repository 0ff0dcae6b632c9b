import { expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { copyPhotos, imgd, imgdJson, MODELS, PHOTOS, REPO, tempDir } from "./cli-harness.ts";

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
