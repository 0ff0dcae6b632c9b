// Decides, before any pixel is read, what an incremental run has to do. Pure: scanned files + catalog in, plan out.
import { basename } from "node:path";
import { inScope, isUnder, rootsWithoutFiles, type ScanScope } from "./scan.ts";
import type { KnownFile } from "./store/catalog.ts";
import type { ScannedFile } from "./types.ts";

export interface IndexPlan {
  /** Same path, size, mtime and ctime as the catalog: nothing to do. */
  unchanged: number;
  /** New paths, known paths whose size, mtime or ctime changed, files that could not be read before: hash, then embed. */
  candidates: ScannedFile[];
  /** In-scope catalog entries whose path was not seen: either moved (matched later by content hash) or deleted. */
  missing: KnownFile[];
  /** Unchanged indexed files that an enabled analysis stage has not seen yet: decode and analyse, keep the vector. */
  reanalyze: { file: ScannedFile; id: number }[];
  /**
   * Root directories that held no image at all while the catalog has files under them: more likely an unmounted
   * volume than a deleted library, so their files are kept (not in `missing`) unless the caller allows empty roots.
   */
  emptyRoots: { root: string; catalogued: number }[];
  /**
   * Unchanged files catalogued without a ctime (by an older imgd, a worker, an ingest), with the one the scan saw:
   * recorded, so that a later replacement that keeps size and mtime is noticed.
   */
  adoptCtimes: { id: number; ctimeMs: number }[];
}

export interface PlanOptions {
  /** What the scan saw in full; null (an explicit list, a worker's batch): nothing is reported missing. */
  scope: ScanScope | null;
  /** Remove what the catalog holds under a root that is now empty (default false: keep it, and say so). */
  allowEmptyRoots?: boolean;
  needsAnalysis?: (id: number) => boolean;
}

/** `scanned` holds each path once, as every scan and path list gives them. */
export function planIndexWork(scanned: ScannedFile[], known: Map<string, KnownFile>, opts: PlanOptions): IndexPlan {
  const needsAnalysis = opts.needsAnalysis ?? (() => false);
  const candidates: ScannedFile[] = [];
  const reanalyze: IndexPlan["reanalyze"] = [];
  const adoptCtimes: IndexPlan["adoptCtimes"] = [];
  let unchanged = 0;
  let seenKnown = 0;
  for (const file of scanned) {
    const prior = known.get(file.path);
    if (prior) seenKnown++;
    // A file that could not be read (permissions, I/O) is tried again: fixing that does not change its mtime.
    if (prior && sameFileState(prior, file) && prior.errorReason !== "unreadable") {
      if (prior.ctimeMs === null && file.ctimeMs !== undefined) adoptCtimes.push({ id: prior.id, ctimeMs: file.ctimeMs });
      if (prior.status === "indexed" && needsAnalysis(prior.id)) reanalyze.push({ file, id: prior.id });
      else unchanged++;
    } else candidates.push(file);
  }
  const scope = opts.scope;
  if (!scope) return { unchanged, candidates, missing: [], reanalyze, emptyRoots: [], adoptCtimes };
  // Every catalogued path scanned again (the nightly re-run): none is missing, and a 1M-path set is not needed to say so.
  if (seenKnown === known.size) return { unchanged, candidates, missing: [], reanalyze, emptyRoots: [], adoptCtimes };
  const seen = new Set(scanned.map((f) => f.path));
  let missing = [...known.values()].filter((k) => !seen.has(k.path) && inScope(scope, k.path));
  const emptyRoots: IndexPlan["emptyRoots"] = [];
  if (!opts.allowEmptyRoots) {
    for (const root of rootsWithoutFiles(scope.roots, scanned)) {
      const catalogued = missing.filter((k) => isUnder(k.path, root)).length;
      if (catalogued === 0) continue;
      emptyRoots.push({ root, catalogued });
      missing = missing.filter((k) => !isUnder(k.path, root));
    }
  }
  return { unchanged, candidates, missing, reanalyze, emptyRoots, adoptCtimes };
}

/** Same size and mtime, and the same ctime where both sides have one. */
function sameFileState(prior: KnownFile, file: ScannedFile): boolean {
  if (prior.size !== file.size || prior.mtimeMs !== file.mtimeMs) return false;
  return prior.ctimeMs === null || file.ctimeMs === undefined || prior.ctimeMs === file.ctimeMs;
}

/**
 * Content key used to recognise a moved file: imohash already includes the size, so it is enough on its own.
 * With `failedToo`, files that failed to decode count as well (not those that could not be read: they are retried).
 */
export function movedFromIndex(missing: KnownFile[], opts: { failedToo?: boolean } = {}): Map<string, KnownFile[]> {
  const byHash = new Map<string, KnownFile[]>();
  for (const m of missing) {
    if (!m.imohash) continue;
    if (m.status !== "indexed" && !(opts.failedToo && m.errorReason !== "unreadable")) continue;
    const list = byHash.get(m.imohash) ?? [];
    list.push(m);
    byHash.set(m.imohash, list);
  }
  return byHash;
}

/** Catalogued images found again under another scanned path, resolved before the pipeline runs. */
export interface MovePlan {
  /** Each keeps its id, vector and every row that hangs off it; only its path, size and mtime change. */
  moves: { id: number; file: ScannedFile }[];
  /** Rows at a path that a move takes whose own content is nowhere now (a file renamed over another): deleted. */
  displaced: number[];
}

/**
 * Catalogued images whose content may now be at another path: the in-scope missing ones, and those whose path is
 * a candidate (it may hold other content now, as after a swap). Only indexed images with a content hash count.
 */
function mayHaveMoved(plan: IndexPlan, known: Map<string, KnownFile>): KnownFile[] {
  const out = plan.missing.filter((m) => m.status === "indexed" && m.imohash);
  for (const file of plan.candidates) {
    const prior = known.get(file.path);
    if (prior && prior.status === "indexed" && prior.imohash) out.push(prior);
  }
  return out;
}

/**
 * The candidates whose content hash `resolveMoves` needs. imohash includes the size, so only a candidate of the
 * same size as an image that may have moved can hold it: a run that adds new photos hashes (almost) none up front.
 */
export function filesToHashForMoves(plan: IndexPlan, known: Map<string, KnownFile>): ScannedFile[] {
  const sizes = new Set(mayHaveMoved(plan, known).map((k) => k.size));
  return plan.candidates.filter((f) => sizes.has(f.size));
}

/**
 * Which candidates hold content the catalog has under a path that is gone or now holds other content: renames,
 * and swaps and cycles of renames, where every path involved is known but holds another one's photo. `hashes`
 * maps the paths of `filesToHashForMoves` to their imohash (a file that could not be hashed is left out).
 */
export function resolveMoves(plan: IndexPlan, known: Map<string, KnownFile>, hashes: Map<string, string>): MovePlan {
  // An image is free to move when its path is missing, or holds content of another size or another hash.
  const candidateAt = new Map(plan.candidates.map((f) => [f.path, f]));
  const vacated = mayHaveMoved(plan, known).filter((k) => {
    const now = candidateAt.get(k.path);
    if (!now) return true; // missing
    const hash = hashes.get(k.path);
    return now.size !== k.size || (hash !== undefined && hash !== k.imohash);
  });
  const byHash = movedFromIndex(vacated);
  const claimed = new Set<number>();
  const moves: MovePlan["moves"] = [];
  for (const file of plan.candidates) {
    const hash = hashes.get(file.path);
    if (hash === undefined || known.get(file.path)?.imohash === hash) continue;
    const from = byHash.get(hash)?.filter((m) => !claimed.has(m.id));
    // Copies of one photo moved together: keep each copy's rows with the file of its name where possible.
    const pick = from?.find((m) => basename(m.path) === basename(file.path)) ?? from?.[0];
    if (!pick) continue;
    claimed.add(pick.id);
    moves.push({ id: pick.id, file });
  }
  const displaced = moves.flatMap(({ file }) => {
    const holder = known.get(file.path);
    return holder && !claimed.has(holder.id) ? [holder.id] : [];
  });
  return { moves, displaced };
}

/** `known` as it is once `plan` is applied: moved images under their new paths, displaced and vacated paths gone. */
export function knownAfterMoves(known: Map<string, KnownFile>, plan: MovePlan): Map<string, KnownFile> {
  if (plan.moves.length === 0) return known;
  const changed = new Set([...plan.displaced, ...plan.moves.map((m) => m.id)]);
  const byId = new Map<number, KnownFile>();
  const out = new Map<string, KnownFile>();
  for (const [path, k] of known) {
    if (changed.has(k.id)) byId.set(k.id, k);
    else out.set(path, k);
  }
  for (const { id, file } of plan.moves) {
    out.set(file.path, { ...byId.get(id)!, path: file.path, size: file.size, mtimeMs: file.mtimeMs, ctimeMs: file.ctimeMs ?? null });
  }
  return out;
}
