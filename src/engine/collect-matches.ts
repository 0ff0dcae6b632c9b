// Copies or links query results into a folder under the names our users' scripts already expect:
// match_YYYYMMDD_HHMMSS_rank001.jpg (query time, 1-based rank, the original extension).
import { constants } from "node:fs";
import { access, copyFile, mkdir, symlink, writeFile } from "node:fs/promises";
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
export async function collectMatches(
  paths: string[],
  dir: string,
  mode: "copy" | "link",
  at = new Date(),
  firstRank = 1,
): Promise<CollectedMatches> {
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
    out.written.push(
      await placeMatch(dir, at, firstRank + i, source, (target) =>
        mode === "copy" ? copyFile(source, target, constants.COPYFILE_EXCL) : symlink(source, target),
      ),
    );
  }
  return out;
}

/**
 * The same names for matches whose bytes come from elsewhere (a remote server's files): `read` gives a hit's bytes,
 * or throws why it cannot, which skips that hit.
 */
export async function saveMatches(
  sources: { path: string; read: () => Promise<Uint8Array> }[],
  dir: string,
  at = new Date(),
  firstRank = 1,
): Promise<CollectedMatches> {
  await ensureMatchFolder(dir);
  const out: CollectedMatches = { written: [], skipped: [] };
  for (const [i, source] of sources.entries()) {
    let bytes: Uint8Array;
    try {
      bytes = await source.read();
    } catch (err) {
      out.skipped.push({ path: source.path, reason: (err as Error).message });
      continue;
    }
    out.written.push(await placeMatch(dir, at, firstRank + i, source.path, (target) => writeFile(target, bytes, { flag: "wx" })));
  }
  return out;
}

/** Writes a match under the first free name of its rank; `write` must fail with EEXIST rather than overwrite. */
async function placeMatch(dir: string, at: Date, rank: number, sourcePath: string, write: (target: string) => Promise<void>): Promise<string> {
  for (let copy = 1; ; copy++) {
    const target = join(dir, matchFileName(at, rank, sourcePath, copy));
    try {
      await write(target);
      return target;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
  }
}

/**
 * Creates the folder for the matches, or says why `dir` cannot be one (a file, or a folder this user cannot write to,
 * or on a read-only mount); a caller can check it before searching.
 */
export async function ensureMatchFolder(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") throw new Error(`${dir} is a file, not a folder to put the matches in`);
    throw new Error(`cannot create the folder ${dir} for the matches (${code ?? (err as Error).message})`);
  }
  await access(dir, constants.W_OK | constants.X_OK).catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot write the matches into the folder ${dir} (${err.code ?? err.message})`);
  });
}
