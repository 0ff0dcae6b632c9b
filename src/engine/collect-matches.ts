// Copies or links query results into a folder under the names our users' scripts already expect:
// match_YYYYMMDD_HHMMSS_rank001.jpg (query time, 1-based rank, the original extension).
import { copyFile, mkdir, symlink } from "node:fs/promises";
import { extname, join } from "node:path";

export function matchFileName(at: Date, rank: number, sourcePath: string): string {
  const two = (n: number) => String(n).padStart(2, "0");
  const stamp = `${at.getFullYear()}${two(at.getMonth() + 1)}${two(at.getDate())}_${two(at.getHours())}${two(at.getMinutes())}${two(at.getSeconds())}`;
  const ext = extname(sourcePath).toLowerCase() || ".jpg";
  return `match_${stamp}_rank${String(rank).padStart(3, "0")}${ext}`;
}

export async function collectMatches(
  paths: string[],
  dir: string,
  mode: "copy" | "link",
  at = new Date(),
): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const written: string[] = [];
  for (const [i, source] of paths.entries()) {
    const target = join(dir, matchFileName(at, i + 1, source));
    if (mode === "copy") await copyFile(source, target);
    else await symlink(source, target);
    written.push(target);
  }
  return written;
}
