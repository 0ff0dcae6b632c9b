// Decides, before any pixel is read, what an incremental run has to do. Pure: scanned files + catalog in, plan out.
import { inScope, isUnder, type ScanScope } from "./scan.ts";
import type { KnownFile } from "./store/catalog.ts";
import type { ScannedFile } from "./types.ts";

export interface IndexPlan {
  /** Same path, size and mtime as the catalog: nothing to do. */
  unchanged: number;
  /** New paths, known paths whose size or mtime changed, and files that could not be read before: hash, then embed. */
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
}

export interface PlanOptions {
  /** What the scan saw in full; null (an explicit list, a worker's batch): nothing is reported missing. */
  scope: ScanScope | null;
  /** Remove what the catalog holds under a root that is now empty (default false: keep it, and say so). */
  allowEmptyRoots?: boolean;
  needsAnalysis?: (id: number) => boolean;
}

export function planIndexWork(scanned: ScannedFile[], known: Map<string, KnownFile>, opts: PlanOptions): IndexPlan {
  const needsAnalysis = opts.needsAnalysis ?? (() => false);
  const seen = new Set<string>();
  const candidates: ScannedFile[] = [];
  const reanalyze: IndexPlan["reanalyze"] = [];
  let unchanged = 0;
  for (const file of scanned) {
    seen.add(file.path);
    const prior = known.get(file.path);
    // A file that could not be read (permissions, I/O) is tried again: fixing that does not change its mtime.
    if (prior && prior.size === file.size && prior.mtimeMs === file.mtimeMs && prior.errorReason !== "unreadable") {
      if (prior.status === "indexed" && needsAnalysis(prior.id)) reanalyze.push({ file, id: prior.id });
      else unchanged++;
    } else candidates.push(file);
  }
  const scope = opts.scope;
  if (!scope) return { unchanged, candidates, missing: [], reanalyze, emptyRoots: [] };
  let missing = [...known.values()].filter((k) => !seen.has(k.path) && inScope(scope, k.path));
  const emptyRoots: IndexPlan["emptyRoots"] = [];
  if (!opts.allowEmptyRoots) {
    for (const root of scope.roots) {
      if (scanned.some((f) => isUnder(f.path, root))) continue;
      const catalogued = missing.filter((k) => isUnder(k.path, root)).length;
      if (catalogued === 0) continue;
      emptyRoots.push({ root, catalogued });
      missing = missing.filter((k) => !isUnder(k.path, root));
    }
  }
  return { unchanged, candidates, missing, reanalyze, emptyRoots };
}

/** Content key used to recognise a moved file: imohash already includes the size, so it is enough on its own. */
export function movedFromIndex(missing: KnownFile[]): Map<string, KnownFile[]> {
  const byHash = new Map<string, KnownFile[]>();
  for (const m of missing) {
    if (!m.imohash || m.status !== "indexed") continue;
    const list = byHash.get(m.imohash) ?? [];
    list.push(m);
    byHash.set(m.imohash, list);
  }
  return byHash;
}
