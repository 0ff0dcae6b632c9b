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
  const tmp = tempPath(path);
  try {
    write(tmp);
    install(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  // Without this the rename itself may not survive a power loss.
  fsyncPath(dirname(path));
}

/**
 * commitFileWith for a writer that streams (a download); `tmp` may be named by the caller, e.g. so that the
 * leftovers of writers that died can be told apart from those still writing.
 */
export async function commitFileStreamed(path: string, write: (tmp: string) => Promise<void>, tmp = tempPath(path)): Promise<void> {
  try {
    await write(tmp);
    install(tmp, path);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw error;
  }
  fsyncPath(dirname(path));
}

/** Same directory, so the rename never crosses a filesystem; pid-suffixed so concurrent writers do not collide. */
function tempPath(path: string): string {
  return join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
}

function install(tmp: string, path: string): void {
  fsyncPath(tmp);
  renameSync(tmp, path);
}

function fsyncPath(path: string): void {
  const fd = openSync(path, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
