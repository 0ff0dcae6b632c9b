// Analysis stages across hosts: the coordinator's job names them, every worker runs them on its batches, and the
// merged index answers stage filters exactly as one machine's index would.
import { afterAll, expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { imgdJson } from "../cli/cli-harness.ts";
import { PHOTOS, startCoordinatorProc, startWorkerProc, tempDir, type Proc } from "./cluster-harness.ts";

const procs: Proc[] = [];
afterAll(() => procs.forEach((p) => p.proc.kill("SIGKILL")));

test("workers run the job's stages and the merged index filters by what they found", async () => {
  const root = tempDir("stages");
  const photos = join(root, "photos");
  mkdirSync(photos);
  const sharp = loadSharp();
  const planted: string[] = [];
  // home, fruits and building have no saturated red of their own, which the test detector would call a car.
  const sources = ["home.jpg", "fruits.jpg", "building.jpg"];
  for (let i = 0; i < 12; i++) {
    const red = i % 4 === 1;
    const name = `p${String(i).padStart(2, "0")}.jpg`;
    if (red) planted.push(name);
    await sharp(join(PHOTOS, sources[i % 3]!))
      .resize(320 + i * 8)
      .composite(red ? [{ input: { create: { width: 60, height: 40, channels: 3, background: "#ff0000" } }, left: 20, top: 20 }] : [])
      .jpeg({ quality: 90 })
      .toFile(join(photos, name));
  }
  const storage = join(root, "storage");
  const { p: coordinator, url } = await startCoordinatorProc([photos], storage, ["--batch", "3", "--objects", "--object-model", "test-yolo"]);
  procs.push(coordinator);
  const workers = [startWorkerProc(url), startWorkerProc(url)];
  procs.push(...workers);
  // Without --serve the coordinator exits once the shards are merged.
  expect(await coordinator.exited).toBe(0);
  expect(coordinator.stderr.join("\n")).toMatch(/merged \d+ shards? .*12 indexed/);
  for (const w of workers) expect(await w.exited).toBe(0);

  const found = await imgdJson(["query", "--index", join(storage, "index"), "--has", "car", "-k", "20"]);
  expect(found.hits.map((h: { path: string }) => h.path.split("/").pop()).sort()).toEqual(planted);
}, 120_000);
