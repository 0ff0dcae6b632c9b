// What a worker checks before it takes work: that it writes where the coordinator reads (the shared storage) and
// that it can see the photos. Without these a misconfigured host "finishes" batches that are lost or all failed.
import { closeSync, openSync, readFileSync, statSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { pathMapConflict, toLocalPath, type PathMapping } from "../engine/path-map.ts";
import { isUnder } from "../engine/scan.ts";
import { ownerText } from "./owner-text.ts";
import { jobMarkerPath } from "./storage-layout.ts";

/** Why `storage` (this host's path to the storage) is not the coordinator's, or null when it is. */
export function storageMismatch(storage: string, jobId: string, coordinatorStorage: string): string | null {
  const marker = jobMarkerPath(storage);
  let found: string;
  try {
    found = readFileSync(marker, "utf8").trim();
  } catch {
    found = "";
  }
  if (found === jobId) return null;
  const what = found ? `names job ${found}, not ${jobId}` : "does not exist";
  return (
    `${storage} is not the coordinator's storage (${coordinatorStorage} there): ${marker} ${what}. ` +
    "Shards written here would never be merged; mount the shared storage on this host and pass --storage with its path here"
  );
}

/**
 * Why this process cannot create its shard in `shardsDir` (the coordinator made it, perhaps as another user), or
 * null. Found at registration, not as a bare EACCES at the first batch: a worker running as root on an NFS share
 * exported with root_squash writes as nobody, and one running as another user than the coordinator may not write a
 * directory the coordinator created with its umask.
 */
export function shardsDirProblem(shardsDir: string): string | null {
  const probe = join(shardsDir, `.imgd-probe-${hostname()}-${process.pid}`);
  try {
    closeSync(openSync(probe, "wx"));
    unlinkSync(probe);
    return null;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? String(err);
    // Not there (yet): the shard's own mkdir creates it, or says why not.
    if (code === "ENOENT") return null;
    const uid = process.getuid?.();
    const who = uid === undefined ? "this worker" : `this worker (uid ${uid})`;
    if (code === "EROFS") return `${who} cannot write its shard in ${shardsDir}: the storage is mounted read-only here; mount it read-write`;
    return (
      `${who} cannot write its shard in ${shardsDir}: ${code}; ${ownerText(shardsDir)}. ` +
      "Run the worker as a user that may write there, or let this one (a group both share, or chmod 1777 on it); " +
      "NFS root_squash maps a worker running as root to nobody"
    );
  }
}

/** The job's roots, as this host maps them, that it cannot see as directories. */
function unseenRoots(roots: string[], pathMap: PathMapping[]): { root: string; local: string }[] {
  return roots
    .map((root) => ({ root, local: toLocalPath(root, pathMap) }))
    .filter(({ local }) => {
      try {
        const s = statSync(local);
        return !s.isDirectory() && !s.isFile();
      } catch {
        return true;
      }
    });
}

function unseenRootsText(unseen: { root: string; local: string }[]): string {
  const list = unseen.map((u) => (u.local === u.root ? u.local : `${u.local} (the coordinator's ${u.root})`)).join(", ");
  return `this host cannot see ${list}: mount the photos here, or map them with --path-map COORDINATOR_PATH=LOCAL_PATH`;
}

/**
 * Why this host cannot index the job's photos, or null: a root it cannot see, or one it sees without any of the
 * coordinator's sample files in it (an empty mount point, a --path-map to the wrong folder), which would fail every
 * file it is given. A sample counts when a file of its size is where the map puts it.
 */
export function photosProblem(job: { roots: string[]; samples: { path: string; size: number }[] }, pathMap: PathMapping[]): string | null {
  const unseen = unseenRoots(job.roots, pathMap);
  if (unseen.length > 0) return unseenRootsText(unseen);
  for (const root of job.roots) {
    const samples = job.samples.filter((f) => isUnder(f.path, root));
    if (samples.length === 0 || samples.some((f) => sizeAt(toLocalPath(f.path, pathMap)) === f.size)) continue;
    const local = toLocalPath(root, pathMap);
    const example = toLocalPath(samples[0]!.path, pathMap);
    return (
      `none of ${samples.length} photos the coordinator has under ${root} is here under ${local}${local === root ? "" : " (as --path-map puts them)"}, ` +
      `e.g. ${example}: mount the photos there (is it an empty mount point?), or map them with --path-map COORDINATOR_PATH=LOCAL_PATH`
    );
  }
  return null;
}

function sizeAt(path: string): number | null {
  try {
    const s = statSync(path);
    return s.isFile() ? s.size : null;
  } catch {
    return null;
  }
}

/**
 * Why `pathMap` cannot be used for the job's roots, or null: a file it reads at one path would be stored under another
 * file's path (found short at the merge and redone forever, or merged as the wrong image).
 */
export function pathMapProblem(roots: string[], pathMap: PathMapping[]): string | null {
  const c = pathMapConflict(pathMap, roots);
  if (!c) return null;
  return (
    `--path-map does not map the coordinator's ${c.canonical} back to itself: it is read here at ${c.local}, which maps back to ${c.storedAs}. ` +
    "Give FROM=TO pairs that nest the same way on both sides (FROM the coordinator's path, TO this host's)"
  );
}
