// The one way imgd commits a file: write a temp file beside the target, fsync it, rename over the target, fsync
// the directory. Readers see the old file or the new one, never a half-written one, even after a crash.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

function fsyncPath(path: string, flags = "r"): void {
  const fd = openSync(path, flags);
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** `write` receives a temp path in the same directory and must leave the complete content there. */
export async function commitFile(target: string, write: (tempPath: string) => void | Promise<void>): Promise<void> {
  const temp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${Date.now()}`);
  try {
    await write(temp);
    fsyncPath(temp);
    renameSync(temp, target);
  } catch (err) {
    rmSync(temp, { force: true });
    throw err;
  }
  fsyncPath(dirname(target));
}

export function commitBytes(target: string, bytes: string | Uint8Array): Promise<void> {
  return commitFile(target, (temp) => writeFileSync(temp, bytes));
}
