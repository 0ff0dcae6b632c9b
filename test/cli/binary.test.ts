import { expect, test } from "bun:test";
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { copyPhotos, MODELS, REPO, tempDir } from "./cli-harness.ts";

test("dist/imgd runs alone from an empty directory: index then query, with neither Bun nor node_modules", async () => {
  const build = Bun.spawnSync([process.execPath, join(REPO, "build.ts")], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);

  const root = tempDir("binary");
  const bin = join(root, "empty", "imgd");
  mkdirSync(join(root, "empty"));
  copyFileSync(join(REPO, "dist/imgd"), bin);
  const photos = join(root, "photos");
  mkdirSync(photos);
  copyPhotos(["orange.jpg", "chelsea.png", "rocket.jpg"], photos);
  // A bare environment: no Bun on PATH, a fresh HOME (so the native cache is unpacked from scratch).
  const env = { PATH: "/usr/bin:/bin", HOME: join(root, "home"), IMGD_MODELS: MODELS };
  const run = (args: string[]) =>
    Bun.spawnSync([bin, ...args], { cwd: join(root, "empty"), env, stdout: "pipe", stderr: "pipe" });

  const indexed = run(["index", photos, "--index", join(root, "idx"), "--model", "test-clip", "--json"]);
  expect(indexed.stderr.toString()).toBe("");
  expect(JSON.parse(indexed.stdout.toString()).embedded).toBe(3);

  const queried = run(["query", "an orange", "--index", join(root, "idx"), "-k", "1", "--json"]);
  expect(queried.exitCode).toBe(0);
  expect(JSON.parse(queried.stdout.toString()).hits[0].path).toBe(join(photos, "orange.jpg"));
}, 180_000);
