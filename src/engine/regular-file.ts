// Files imgd was told about may have changed since: removed, or replaced by a FIFO (whose open would wait on a pool
// thread until some writer came, and with it every later file operation) or a folder. Opened without blocking and
// checked on the descriptor itself, so the check and the read are of one and the same file.
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";

export class NotRegularFile extends Error {
  override name = "NotRegularFile";
}

/** A handle on `path` if it is a regular file; ENOENT as opening throws it; NotRegularFile for anything else. */
export async function openRegularFile(path: string): Promise<FileHandle> {
  const handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    if (!(await handle.stat()).isFile()) throw new NotRegularFile(`${path} is not a regular file`);
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}
