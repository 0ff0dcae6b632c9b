// The one way imgd commits a file: write a temp file beside it, fsync, rename over, fsync the directory.
// A reader (or a restart after SIGKILL / power loss) sees either the old file or the new one, never a mix.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Commits `data` to `path` atomically. */
export function commitFile(path: string, data: string | Uint8Array): void {
  commitFileWith(path, (tmp) => writeFileSync(tmp, data));
}

/** Like commitFile, for writers that want a path (e.g. a native `save(path)`); `write` must create `tmp`. */
export function commitFileWith(path: string, write: (tmp: string) => void): void {
  // Same directory, so the rename never crosses a filesystem; pid-suffixed so concurrent writers do not collide.
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    write(tmp);
    fsyncPath(tmp);
    renameSync(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  // Without this the rename itself may not survive a power loss.
  fsyncPath(dirname(path));
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
