// Where an uploaded image's bytes live: `<index>/uploads/<imohash>.<ext>`, or `<imohash>-<sha256 prefix>.<ext>` for
// another content of the same imohash. The file is committed before its catalog row (the row must point at a real
// file), so a process killed between the two leaves a file that nothing references.
import { readdirSync, rmSync } from "node:fs";
import { basename, join } from "node:path";
import type { IndexStore } from "./store/index-store.ts";

/** The name an upload is stored under; `sha256` only when another content already holds `<hash>.<ext>`. */
export function uploadFileName(hash: string, ext: string, sha256?: string): string {
  return sha256 === undefined ? `${hash}.${ext}` : `${hash}-${sha256.slice(0, 16)}.${ext}`;
}

// What uploadFileName makes (an imohash is 16 bytes of hex), and commitFile's temp files for it.
const UPLOAD_NAME = /^[0-9a-f]{32}(-[0-9a-f]{16})?\.[a-z0-9]+$/;
const UPLOAD_TEMP = /^\.[0-9a-f]{32}(-[0-9a-f]{16})?\.[a-z0-9]+\.\d+\.tmp$/;

/**
 * Removes the files in `uploadsDir` that imgd named but no catalog row references: uploads whose row was never
 * committed (the server was killed in between) and half-written temp files. Call it with the index open for writing
 * and before any ingest starts: the catalog's write lock keeps other processes out, so nothing is in flight.
 * Any other file there is the user's and stays. Returns the names removed.
 */
export async function removeUncommittedUploads(store: IndexStore, uploadsDir: string): Promise<string[]> {
  if (store.readOnly) throw new Error(`index ${store.dir} was opened read-only`);
  let names: string[];
  try {
    names = readdirSync(uploadsDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw err;
  }
  const ours = names.filter((n) => UPLOAD_NAME.test(n) || UPLOAD_TEMP.test(n));
  if (ours.length === 0) return [];
  // By file name, not full path: a moved index directory still references its uploads by their old path.
  const rows = await store.read("SELECT path FROM images WHERE path LIKE '%/uploads/%'");
  const referenced = new Set(rows.map(([path]) => basename(path as string)));
  const removed = ours.filter((n) => !referenced.has(n));
  for (const name of removed) rmSync(join(uploadsDir, name), { force: true });
  return removed;
}
