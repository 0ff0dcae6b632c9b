import { expect, test } from "bun:test";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { imgdJson, MODELS, PHOTOS, REPO, tempDir } from "./cli-harness.ts";

async function makePhotos(dir: string, count: number) {
  mkdirSync(dir, { recursive: true });
  const sharp = loadSharp();
  const sources = ["orange.jpg", "apple.jpg", "fruits.jpg", "rocket.jpg", "home.jpg"];
  await Promise.all(
    Array.from({ length: count }, (_, i) =>
      sharp(join(PHOTOS, sources[i % sources.length]!))
        .resize(320 + (i % 17) * 8)
        .modulate({ hue: i * 7 })
        .jpeg({ quality: 85 })
        .toFile(join(dir, `p${String(i).padStart(4, "0")}.jpg`)),
    ),
  );
}

for (const signal of ["SIGINT", "SIGKILL"] as const) {
  test(`a run stopped by ${signal} mid-way leaves a readable index and the next run completes it exactly once`, async () => {
    const root = tempDir(`stop-${signal}`);
    const photos = join(root, "photos");
    const index = join(root, "index");
    const count = 240;
    await makePhotos(photos, count);

    const proc = Bun.spawn(
      [process.execPath, join(REPO, "src/cli/main.ts"), "index", photos, "--index", index, "--model", "test-clip", "--batch", "8", "--threads", "1"],
      { env: { ...process.env, IMGD_MODELS: MODELS, CI: "true" }, stdout: "pipe", stderr: "pipe" },
    );
    // Wait until the first batches are committed, then stop it.
    const reader = proc.stderr.getReader();
    let seen = "";
    while (!seen.includes("to process")) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    await Bun.sleep(400);
    proc.kill(signal);
    const code = await proc.exited;
    if (signal === "SIGINT") expect([0, 130]).toContain(code);

    const partial = await imgdJson(["info", "--index", index]);
    expect(partial.vectors).toBe(partial.indexed);

    const resumed = await imgdJson(["index", photos, "--index", index, "--model", "test-clip"]);
    expect(resumed.unchanged + resumed.embedded + resumed.touched).toBe(count);
    const info = await imgdJson(["info", "--index", index]);
    expect(info.indexed).toBe(count);
    expect(info.vectors).toBe(count);
    expect(info.total).toBe(count);
  }, 120_000);
}
