// `--path-map FROM=TO`: stored paths are canonical (as the coordinator scanned them, FROM); each host reads and
// shows them under its own mount point (TO). The longest matching prefix wins, on whole path components only.
import { isUnder } from "./scan.ts";

export interface PathMapping {
  from: string;
  to: string;
}

export function parsePathMaps(specs: string[]): PathMapping[] {
  return specs.map((spec) => {
    const eq = spec.indexOf("=");
    if (eq <= 0 || eq === spec.length - 1) throw new Error(`--path-map takes FROM=TO, got "${spec}"`);
    return { from: trimSlash(spec.slice(0, eq)), to: trimSlash(spec.slice(eq + 1)) };
  });
}

/** Canonical -> this host. */
export function toLocalPath(path: string, maps: PathMapping[]): string {
  return rewrite(path, maps, "from", "to");
}

/** This host -> canonical. */
export function toCanonicalPath(path: string, maps: PathMapping[]): string {
  return rewrite(path, maps, "to", "from");
}

/**
 * A canonical path under `roots` that `maps` would not give back as itself: this host would read it at `local` and
 * store what it read there as `storedAs`, another file's path. Maps whose two sides nest differently
 * (/photos=/mnt/p with /photos/2020=/mnt/p/old) or whose TO is itself a canonical path under a root do that. Null when
 * every path comes back as itself.
 *
 * A path goes wrong only under a probe that goes wrong: the TO of a map read back with the map above it (or
 * unmapped), so testing the probes (or the roots beneath one) is enough.
 */
export function pathMapConflict(maps: PathMapping[], roots: string[]): { canonical: string; local: string; storedAs: string } | null {
  const probes = new Set<string>();
  for (const inner of maps) {
    probes.add(inner.to);
    for (const outer of maps) {
      // The canonical path that outer alone reads at inner's TO.
      if (outer !== inner && isUnder(inner.to, outer.to)) probes.add(toCanonicalPath(inner.to, [outer]));
    }
  }
  for (const probe of probes) {
    const canonicals = roots.some((r) => isUnder(probe, r)) ? [probe] : roots.filter((r) => isUnder(r, probe));
    for (const canonical of canonicals) {
      const local = toLocalPath(canonical, maps);
      const storedAs = toCanonicalPath(local, maps);
      if (storedAs !== canonical) return { canonical, local, storedAs };
    }
  }
  return null;
}

function rewrite(path: string, maps: PathMapping[], src: "from" | "to", dst: "from" | "to"): string {
  let best: PathMapping | null = null;
  for (const m of maps) {
    const prefix = m[src];
    if (isUnder(path, prefix) && (!best || prefix.length > best[src].length)) best = m;
  }
  // "/" is a prefix of every absolute path, and what follows it has no leading slash of its own.
  return best ? joinRest(best[dst], path.slice(best[src] === "/" ? 0 : best[src].length)) : path;
}

/** `base` followed by `rest` ("" or starting with "/"). */
function joinRest(base: string, rest: string): string {
  if (base === "/") return rest || "/";
  return rest === "/" ? base : base + rest;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}
