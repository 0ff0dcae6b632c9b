// Copies or links query results into a folder under the names our users' scripts already expect:
// match_YYYYMMDD_HHMMSS_rank001.jpg (query time, 1-based rank, the original extension).
import { constants } from "node:fs";
import { access, copyFile, mkdir, symlink } from "node:fs/promises";
import { extname, join } from "node:path";

export function matchFileName(at: Date, rank: number, sourcePath: string, copy = 1): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${at.getFullYear()}${two(at.getMonth() + 1)}${two(at.getDate())}_${two(at.getHours())}${two(at.getMinutes())}${two(at.getSeconds())}`;
  const ext = extname(sourcePath).toLowerCase() || ".jpg";
  return `match_${stamp}_rank${String(rank).padStart(3, "0")}${copy > 1 ? `-${copy}` : ""}${ext}`;
}

export interface CollectedMatches {
  written: string[];
  /** Hits whose file cannot be read any more (deleted or locked since it was indexed): the others are still written. */
  skipped: { path: string; reason: string }[];
}

/**
 * Never overwrites: two queries in the same second (or two at once) give the same names, so a name that is taken
 * gets -2, -3... before its extension. A folder that cannot be written to is an error.
 */
export async function collectMatches(paths: string[], dir: string, mode: "copy" | "link", at = new Date()): Promise<CollectedMatches> {
  await ensureMatchFolder(dir);
  const out: CollectedMatches = { written: [], skipped: [] };
  for (const [i, source] of paths.entries()) {
    const problem = await access(source, constants.R_OK).then(
      () => null,
      (err: NodeJS.ErrnoException) => err.code ?? err.message,
    );
    if (problem) {
      out.skipped.push({ path: source, reason: problem });
      continue;
    }
    for (let copy = 1; ; copy++) {
      const target = join(dir, matchFileName(at, i + 1, source, copy));
      try {
        if (mode === "copy") await copyFile(source, target, constants.COPYFILE_EXCL);
        else await symlink(source, target);
        out.written.push(target);
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      }
    }
  }
  return out;
}

/** Creates the folder for the matches, or says why `dir` cannot be one; a caller can check it before searching. */
export async function ensureMatchFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new Error(`${dir} is a file, not a folder to put the matches in`);
    throw new Error(`cannot create the folder ${dir} for the matches (${code ?? (err as Error).message})`);
  }
}
