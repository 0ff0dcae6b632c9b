// Which files the server may read from disk: only those under an allowed root, judged on the real path, so neither
// `..` segments nor a symlink inside a photo folder can lead a request to /etc.
import { lstat, realpath, stat } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import { isUnder } from "../engine/scan.ts";

export class FileRoots {
  private constructor(readonly roots: string[]) {}

  static async of(dirs: Iterable<string>): Promise<FileRoots> {
    const real = await Promise.all([...new Set(dirs)].map((d) => realpath(resolve(d)).catch(() => null)));
    return new FileRoots([...new Set(real.filter((d) => d !== null))]);
  }

  /**
   * The folders an index was built from, when no --root is given: the directories holding its files (`dirs`),
   * collapsed to the outermost ones.
   */
  static outermost(dirs: string[]): string[] {
    const out: string[] = [];
    // Sorted, a folder comes after its parent but not always right after it ("/a", "/a b", "/a/b").
    for (const d of [...new Set(dirs)].sort()) if (!out.some((root) => isUnder(d, root))) out.push(d);
    return out;
  }

  /** The real path of `path` when it exists and lies under a root, otherwise null. */
  async resolve(path: string): Promise<string | null> {
    const real = await realpath(resolve(path)).catch(() => null);
    if (real === null) return null;
    return this.roots.some((r) => isUnder(real, r)) ? real : null;
  }

  /**
   * The real path of `path` when it is a regular file under a root, otherwise null. What was a photo when indexed
   * may since be a directory (Bun fails mid-response on it) or a FIFO (opening one waits for a writer forever, on a
   * pool thread the catalog's queries need too): only a regular file is handed to a reader.
   */
  async resolveFile(path: string): Promise<string | null> {
    const real = await this.resolve(path);
    if (real === null) return null;
    return (await stat(real).then((s) => s.isFile(), () => false)) ? real : null;
  }

  /**
   * Nothing is at `path`, and the folder it would be in lies under a root. Only there may a caller hear "not found":
   * outside the roots a missing file and a refused one must look the same.
   */
  async isMissingUnderRoot(path: string): Promise<boolean> {
    const abs = resolve(path);
    if (await lstat(abs).then(() => true, () => false)) return false;
    for (let dir = dirname(abs); ; dir = dirname(dir)) {
      const real = await realpath(dir).catch(() => null);
      if (real !== null) return this.roots.some((r) => isUnder(real, r));
      if (dir === dirname(dir)) return false;
    }
  }
}

/** Why `dir` cannot be a root (it does not exist, is no directory, or cannot be read), or null when it can. */
export async function unusableRoot(dir: string): Promise<string | null> {
  try {
    if (!(await stat(dir)).isDirectory()) return `root ${dir} is not a directory`;
    return null;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return `root ${dir} does not exist`;
    return `root ${dir} cannot be read: ${err instanceof Error ? err.message : String(err)}`;
  }
}
