// Decides, before any pixel is read, what an incremental run has to do. Pure: scanned files + catalog in, plan out.
import type { KnownFile } from "./store/catalog.ts";
import type { ScannedFile } from "./types.ts";

export interface IndexPlan {
  /** Same path, size and mtime as the catalog: nothing to do. */
  unchanged: number;
  /** New paths, or known paths whose size or mtime changed: hash them, then embed unless the content is known. */
  candidates: ScannedFile[];
  /** Catalog entries whose path was not seen: either moved (matched later by content hash) or deleted. */
  missing: KnownFile[];
  /** Unchanged indexed files that an enabled analysis stage has not seen yet: decode and analyse, keep the vector. */
  reanalyze: { file: ScannedFile; id: number }[];
}

/** With `complete` false (a partial list, e.g. a worker's batch) nothing is reported missing. */
export function planIndexWork(
  scanned: ScannedFile[],
  known: Map<string, KnownFile>,
  complete = true,
  needsAnalysis: (id: number) => boolean = () => false,
): IndexPlan {
  const seen = new Set<string>();
  const candidates: ScannedFile[] = [];
  const reanalyze: IndexPlan["reanalyze"] = [];
  let unchanged = 0;
  for (const file of scanned) {
    seen.add(file.path);
    const prior = known.get(file.path);
    if (prior && prior.size === file.size && prior.mtimeMs === file.mtimeMs) {
      if (prior.status === "indexed" && needsAnalysis(prior.id)) reanalyze.push({ file, id: prior.id });
      else unchanged++;
    } else candidates.push(file);
  }
  const missing = complete ? [...known.values()].filter((k) => !seen.has(k.path)) : [];
  return { unchanged, candidates, missing, reanalyze };
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
