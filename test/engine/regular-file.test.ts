import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { NotRegularFile, openRegularFile } from "../../src/engine/regular-file.ts";

const dir = mkdtempSync(join(tmpdir(), "imgd-regular-file-"));

test("a regular file opens, and what is read is the file", async () => {
  writeFileSync(join(dir, "a.jpg"), "bytes");
  const handle = await openRegularFile(join(dir, "a.jpg"));
  try {
    expect((await handle.readFile()).toString()).toBe("bytes");
  } finally {
    await handle.close();
  }
});

test("a FIFO is refused at once, with no writer ever coming, and so is a folder", async () => {
  expect(spawnSync("mkfifo", [join(dir, "fifo.jpg")]).status).toBe(0);
  mkdirSync(join(dir, "folder.jpg"));
  const t0 = performance.now();
  for (const name of ["fifo.jpg", "folder.jpg"]) {
    const err = await openRegularFile(join(dir, name)).then(() => null, (e: unknown) => e);
    expect(err).toBeInstanceOf(NotRegularFile);
    expect((err as Error).message).toBe(`${join(dir, name)} is not a regular file`);
  }
  expect(performance.now() - t0).toBeLessThan(1000);
});

test("a missing file is ENOENT, as open says it", async () => {
  const err = await openRegularFile(join(dir, "gone.jpg")).then(() => null, (e: unknown) => e);
  expect((err as NodeJS.ErrnoException).code).toBe("ENOENT");
});
