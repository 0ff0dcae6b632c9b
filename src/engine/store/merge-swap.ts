// How a merged index replaces the one before it: built complete as `<index>.merging-PID`, marked complete once closed,
// then two renames (`<index>` -> `<index>.old-PID`, `<index>.merging-PID` -> `<index>`). A kill between those leaves
// no index but the complete new one beside it, which readers open in its place and the next merger puts back.
import { existsSync, readdirSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join } from "node:path";

/** Written into the index being built once it is complete and closed: only such a one may stand for the target. */
export const COMPLETE_MARK = "merge-complete";

export function buildingDir(outDir: string, pid: number): string {
  return `${outDir}.merging-${pid}`;
}

export function replacedDir(outDir: string, pid: number): string {
  return `${outDir}.old-${pid}`;
}

/** What merges into `outDir` left beside it: indexes being built or being replaced. */
function leftBeside(outDir: string): string[] {
  const name = basename(outDir);
  try {
    return readdirSync(dirname(outDir))
      .filter((n) => n.startsWith(`${name}.`) && /^\.(merging|old)-\d+$/.test(n.slice(name.length)))
      .map((n) => join(dirname(outDir), n));
  } catch {
    return [];
  }
}

/** With no index at `outDir`, the complete merged index a merge killed between its renames left beside it, or null. */
export function completeMergeBeside(outDir: string): string | null {
  if (existsSync(outDir)) return null;
  return leftBeside(outDir).find((dir) => /\.merging-\d+$/.test(dir) && existsSync(join(dir, COMPLETE_MARK))) ?? null;
}

/**
 * With no index at `outDir`, puts the complete merged index a merge killed between its renames left beside it in its
 * place, as that merge's second rename would have; returns the directory it was, or null when there was none. A
 * merge that is itself between its renames finds its index in place already, and fails its own rename harmlessly.
 */
export function restoreCompleteMerge(outDir: string): string | null {
  const restored = completeMergeBeside(outDir);
  if (!restored) return null;
  try {
    renameSync(restored, outDir);
  } catch (err) {
    // Another process (a coordinator starting, another writer) put it in place first.
    if ((err as NodeJS.ErrnoException).code === "ENOENT" && existsSync(outDir)) return null;
    throw err;
  }
  return restored;
}

/**
 * Puts right what a merge into `outDir` killed part-way left beside it: with no index at `outDir`, a complete merged
 * index takes its place; every other leftover (an index half built, one being replaced) is removed. Call only when
 * no merge into `outDir` runs.
 */
export function settleMerge(outDir: string): { restored: string | null; removed: string[] } {
  const restored = restoreCompleteMerge(outDir);
  const removed = leftBeside(outDir).filter((dir) => dir !== restored);
  for (const dir of removed) rmSync(dir, { recursive: true, force: true });
  return { restored, removed };
}
