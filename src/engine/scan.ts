// The scan stage: turn roots (or a list file) into the set of image files to consider, with size and mtime so the
// index can skip what has not changed. Anything that is passed over for a reason worth telling the user about is
// returned in `skipped` rather than thrown, so one bad directory never aborts a scan of a large library.
import type { Dirent, Stats } from "node:fs";
import { lstat, readdir, readFile, realpath, stat } from "node:fs/promises";
import { basename, dirname, extname, join, resolve } from "node:path";
import { runPool } from "./async-queue.ts";
import { BMP_EXTENSIONS } from "./bmp.ts";
import { counted } from "./counted.ts";
import { isRawName, RAW_EXTENSIONS } from "./raw-preview.ts";
import type { ScannedFile } from "./types.ts";

/** Lower-case extensions, without the dot, of processed images: what a camera or an editor writes for viewing. */
const PROCESSED_EXTENSIONS: ReadonlySet<string> = new Set([
  ...["jpg", "jpeg", "png", "webp", "gif", "tiff", "tif", "avif", "heic", "heif"],
  ...BMP_EXTENSIONS,
]);

/** Lower-case extensions, without the dot, of files the scan picks up: processed images and camera RAW files. */
export const IMAGE_EXTENSIONS: ReadonlySet<string> = new Set([...PROCESSED_EXTENSIONS, ...RAW_EXTENSIONS]);

export function hasImageExtension(path: string): boolean {
  return IMAGE_EXTENSIONS.has(extname(path).slice(1).toLowerCase());
}

export interface ScanOptions {
  /** Follow symlinked files and directories (default false: they are listed in `skipped` as "symlink"). */
  followSymlinks?: boolean;
  /** Descend into and pick up names starting with '.' (default false). */
  includeHidden?: boolean;
  /** Directories not walked: what imgd itself keeps there (an index's thumbnail cache) is no photo of the user's. */
  exclude?: string[];
  /** Folder names not walked, beside SYSTEM_DIR_NAMES (`imgd index --exclude-dir`). */
  excludeNames?: string[];
}

/**
 * Folders that NAS and OS software keep among photos: Synology's @eaDir holds five thumbnails of every photo (each
 * would index as a near duplicate of its original), the rest are recycle bins, snapshots and archive debris. rclip
 * and Immich's library scans skip them too. A root named on the command line is walked whatever its name.
 */
export const SYSTEM_DIR_NAMES: ReadonlySet<string> = new Set([
  "@eaDir",
  "#recycle",
  "#snapshot",
  "@Recycle",
  "@Recently-Snapshot",
  "$RECYCLE.BIN",
  "System Volume Information",
  "__MACOSX",
  "lost+found",
  "node_modules",
]);

export interface ScanSkip {
  path: string;
  reason: string;
}

export interface ScanResult {
  /** Sorted by path, so two scans of an unchanged tree are identical. */
  files: ScannedFile[];
  skipped: ScanSkip[];
  /** What the scan can vouch for: absent for an explicit list, which says nothing about files not on it. */
  scope?: ScanScope;
}

/**
 * The part of the filesystem a scan saw in full. A catalogued file is gone only if it lies under one of `roots` and
 * not under one of `unreadable` (a directory or file the scan could not read: its files may all still be there).
 */
export interface ScanScope {
  roots: string[];
  unreadable: string[];
}

/** Whether `path` is `root` or lies under it. */
export function isUnder(path: string, root: string): boolean {
  return path === root || path.startsWith(root.endsWith("/") ? root : `${root}/`);
}

/** The roots under which none of `files` lies: an empty folder, or more likely a share not mounted. */
export function rootsWithoutFiles(roots: string[], files: { path: string }[]): string[] {
  return roots.filter((root) => !files.some((f) => isUnder(f.path, root)));
}

/** Whether the scan that produced `scope` would have seen `path` had it been there. */
export function inScope(scope: ScanScope, path: string): boolean {
  return scope.roots.some((r) => isUnder(path, r)) && !scope.unreadable.some((u) => isUnder(path, u));
}

// Directory listings are few and large; stats are many and small. Both are I/O-bound, so a modest number of
// requests in flight keeps the disk queue full without flooding libuv's thread pool.
const DIRECTORY_CONCURRENCY = 16;
const STAT_CONCURRENCY = 64;

/**
 * Walk `roots` recursively for image files. A root that is a file is taken as is when it has an image extension;
 * a root that does not exist throws. Symlinks named as roots are always followed: the user asked for them.
 */
export async function scanRoots(roots: string[], opts: ScanOptions = {}): Promise<ScanResult> {
  const follow = opts.followSymlinks ?? false;
  const includeHidden = opts.includeHidden ?? false;
  const excluded = new Set((opts.exclude ?? []).map((p) => resolve(p)));
  const excludedNames = new Set([...SYSTEM_DIR_NAMES, ...(opts.excludeNames ?? [])]);
  const skipped: ScanSkip[] = [];
  const candidates = new Set<string>();
  const rootDirs: string[] = [];

  const rootStats = await Promise.all(
    roots.map(async (root) => {
      const path = resolve(root);
      return { path, ...(await statRoot(root, path)) };
    }),
  );
  for (const { path, stats, error } of rootStats) {
    if (error) skipped.push({ path, reason: unreadable(error) });
    else if (stats!.isDirectory()) rootDirs.push(path);
    else if (!stats!.isFile()) skipped.push({ path, reason: "not-a-file" });
    else if (hasImageExtension(path)) candidates.add(path);
    else skipped.push({ path, reason: "not-an-image-extension" });
  }

  // Only a followed symlink can lead back into a directory already walked. A directory is pruned only when it is
  // its own ancestor: pruning every second visit would let whichever alias finished first win, so the reported
  // paths would depend on timing. Aliases are walked in full and collapsed by real path afterwards instead.
  await runPool(rootDirs.map((path) => ({ path, ancestors: [] as string[] })), DIRECTORY_CONCURRENCY, async (item) => {
    const dir = item.path;
    let ancestors = item.ancestors;
    if (follow) {
      // dev:ino rather than realpath, so a bind mount looping back is caught too.
      const key = await identityOf(dir);
      if (key === null || ancestors.includes(key)) return [];
      ancestors = [...ancestors, key];
    }
    let entries: Dirent[];
    try {
      entries = await readdir(dir, { withFileTypes: true });
    } catch (error) {
      skipped.push({ path: dir, reason: unreadable(error) });
      return [];
    }
    const subdirs: { path: string; ancestors: string[] }[] = [];
    const found: string[] = [];
    for (const entry of entries) {
      const name = String(entry.name);
      if (!includeHidden && name.startsWith(".")) continue;
      const path = join(dir, name);
      const kind = direntKind(entry) ?? (await lstatKind(path));
      const image = hasImageExtension(name);
      if ((kind !== "file" || image) && (await undecodableName(name, path))) {
        skipped.push({ path, reason: "name-not-utf8" });
        continue;
      }
      if (kind === "dir") {
        if (excludedNames.has(name)) skipped.push({ path, reason: "excluded-dir" });
        else if (!excluded.has(path)) subdirs.push({ path, ancestors });
      } else if (kind === "file") {
        if (image) found.push(path);
      } else if (kind === "symlink") {
        const target = await stat(path).catch(() => null);
        if (!follow) {
          if (target?.isDirectory() || image) skipped.push({ path, reason: "symlink" });
        } else if (!target) {
          if (image) skipped.push({ path, reason: "broken-symlink" });
        } else if (target.isDirectory()) {
          if (excludedNames.has(name)) skipped.push({ path, reason: "excluded-dir" });
          else subdirs.push({ path, ancestors });
        }
        else if (target.isFile() && image) found.push(path);
      }
    }
    // Most folders hold no RAW file: their stems are not needed.
    const raw = found.map(isRawName);
    const processedStems = raw.includes(true) ? new Set(found.filter((_, i) => !raw[i]).map(stemOf)) : null;
    found.forEach((path, i) => {
      if (raw[i] && processedStems!.has(stemOf(path))) skipped.push({ path, reason: "raw-beside-processed" });
      else candidates.add(path);
    });
    return subdirs;
  });

  const files = await statCandidates([...candidates], skipped, follow);
  const unreadablePaths = skipped.filter(isReadFailure).map((s) => s.path);
  return { files, skipped: sortByPath(skipped), scope: { roots: rootStats.map((r) => r.path), unreadable: unreadablePaths } };
}

/**
 * A file's name without its extension. A camera RAW whose folder holds a processed image of the same stem
 * (IMG_0001.CR2 beside IMG_0001.JPG) is passed over: the same photo twice, and the processed one is what the
 * photographer meant to be seen. rclip skips such RAW files too. A RAW named as a root or in a path list is indexed.
 */
function stemOf(path: string): string {
  return basename(path, extname(path));
}

/** Skips that are the scan's choice (what it does not index), not a failure to read what is there. */
const POLICY_SKIPS: ReadonlySet<string> = new Set([
  "symlink",
  "broken-symlink",
  "not-a-file",
  "not-an-image-extension",
  "excluded-dir",
  "raw-beside-processed",
  "missing",
  "name-not-utf8",
]);

/**
 * One line on what a scan passed over that its user may not expect (folders by name, symlinks, RAW files beside
 * their JPEGs, paths it could not read), or null: for a run that reports no per-path list, as a coordinator's.
 */
export function skipSummary(skipped: ScanSkip[]): string | null {
  const folders = new Map<string, number>();
  let links = 0;
  let rawPairs = 0;
  let unreadable = 0;
  for (const s of skipped) {
    if (s.reason === "excluded-dir") folders.set(basename(s.path), (folders.get(basename(s.path)) ?? 0) + 1);
    else if (s.reason === "symlink") links++;
    else if (s.reason === "raw-beside-processed") rawPairs++;
    else if (isReadFailure(s)) unreadable++;
  }
  const parts: string[] = [];
  if (folders.size > 0) {
    const names = [...folders].map(([name, n]) => (n > 1 ? `${JSON.stringify(name)} ×${n}` : JSON.stringify(name))).join(", ");
    parts.push(`${counted([...folders.values()].reduce((a, b) => a + b), "folder")} by name (${names})`);
  }
  if (links > 0) parts.push(counted(links, "symlink"));
  if (rawPairs > 0) parts.push(`${counted(rawPairs, "RAW file")} beside a JPEG of the same name`);
  if (unreadable > 0) parts.push(`${counted(unreadable, "path")} it could not read`);
  return parts.length > 0 ? `the scan passed over ${parts.join(", ")}` : null;
}

/** A path the scan could not read (EACCES, EIO...): whatever is catalogued under it may still be there. */
export function isReadFailure(skip: ScanSkip): boolean {
  return !POLICY_SKIPS.has(skip.reason);
}

/**
 * Read an explicit list of files, one path per line. Blank lines and lines starting with '#' are ignored, CRLF is
 * fine, and relative paths are relative to the list file's own directory (not the working directory).
 */
export async function readPathList(listFile: string): Promise<ScanResult> {
  const listPath = resolve(listFile);
  let text: string;
  try {
    text = await readFile(listPath, "utf8");
  } catch (error) {
    throw new Error(`cannot read path list ${listPath}: ${(error as Error).message}`);
  }
  const base = dirname(listPath);
  const skipped: ScanSkip[] = [];
  const candidates = new Set<string>();
  const rejected = new Set<string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    const path = resolve(base, line);
    if (hasImageExtension(path)) candidates.add(path);
    else if (!rejected.has(path)) {
      rejected.add(path);
      skipped.push({ path, reason: "not-an-image-extension" });
    }
  }
  const files = await statCandidates([...candidates], skipped, false);
  return { files, skipped: sortByPath(skipped) };
}

async function statRoot(root: string, path: string): Promise<{ stats?: Stats; error?: unknown }> {
  try {
    return { stats: await stat(path) };
  } catch (error) {
    const code = errorCode(error);
    if (code === "ENOENT" || code === "ENOTDIR") {
      // Bytes that are not UTF-8 reach us as U+FFFD, and that text names no file: the folder may well be there.
      if (root.includes("\uFFFD")) throw new Error(`cannot open ${root}: its name is not valid UTF-8 (rename it to index it), or it does not exist`);
      throw new Error(`no such file or directory: ${root}`);
    }
    return { error };
  }
}

/**
 * Stat each candidate (following links). With `dedupeByRealPath`, symlink aliases of one file collapse to one
 * entry: the file's own path when it was found directly, else the smallest alias. Hard links stay separate, as
 * they are without following.
 */
async function statCandidates(paths: string[], skipped: ScanSkip[], dedupeByRealPath: boolean): Promise<ScannedFile[]> {
  // `paths` are distinct: without dedupe every file is kept, and a million-entry map would only cost time.
  const byReal = dedupeByRealPath ? new Map<string, ScannedFile>() : null;
  const files: ScannedFile[] = [];
  await runPool(paths, STAT_CONCURRENCY, async (path) => {
    try {
      const s = await stat(path);
      if (!s.isFile()) return void skipped.push({ path, reason: "not-a-file" });
      const file = { path, size: s.size, mtimeMs: s.mtimeMs, ctimeMs: s.ctimeMs };
      if (!byReal) return void files.push(file);
      const real = await realpath(path);
      const kept = byReal.get(real);
      if (kept && (kept.path === real || (path !== real && kept.path < path))) return;
      byReal.set(real, file);
    } catch (error) {
      const code = errorCode(error);
      skipped.push({ path, reason: code === "ENOENT" || code === "ENOTDIR" ? "missing" : unreadable(error) });
    }
  });
  return sortByPath(byReal ? [...byReal.values()] : files);
}

/**
 * Whether a listed name is not valid UTF-8. Listings decode such bytes as U+FFFD, and the path made of that text
 * names no file, so it could be neither read nor stored (the catalog holds paths as text): such a name is reported
 * instead of being dropped as missing. Only names with U+FFFD in them cost an lstat.
 */
async function undecodableName(name: string, path: string): Promise<boolean> {
  if (!name.includes("\uFFFD")) return false;
  return lstat(path).then(
    () => false,
    (error) => errorCode(error) === "ENOENT",
  );
}

type EntryKind = "file" | "dir" | "symlink" | "other";

function direntKind(entry: Dirent): EntryKind | null {
  if (entry.isSymbolicLink()) return "symlink";
  if (entry.isDirectory()) return "dir";
  if (entry.isFile()) return "file";
  if (entry.isFIFO() || entry.isSocket() || entry.isBlockDevice() || entry.isCharacterDevice()) return "other";
  return null;
}

/** For filesystems that do not report entry types in listings (DT_UNKNOWN). */
async function lstatKind(path: string): Promise<EntryKind> {
  const s = await lstat(path).catch(() => null);
  if (!s) return "other";
  return s.isSymbolicLink() ? "symlink" : s.isDirectory() ? "dir" : s.isFile() ? "file" : "other";
}

/** dev:ino of what `path` resolves to, or null if it cannot be stat'ed. */
async function identityOf(path: string): Promise<string | null> {
  const s = await stat(path).catch(() => null);
  return s ? `${s.dev}:${s.ino}` : null;
}

function sortByPath<T extends { path: string }>(items: T[]): T[] {
  return items.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | null)?.code;
}

/** The errno code (EACCES, ELOOP, ...) is short, stable and searchable; the message is a fallback. */
function unreadable(error: unknown): string {
  return errorCode(error) ?? (error as Error).message;
}
