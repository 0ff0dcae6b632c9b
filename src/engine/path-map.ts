// `--path-map FROM=TO`: stored paths are canonical (as the coordinator scanned them, FROM); each host reads and
// shows them under its own mount point (TO). The longest matching prefix wins, on whole path components only.

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

function rewrite(path: string, maps: PathMapping[], src: "from" | "to", dst: "from" | "to"): string {
  let best: PathMapping | null = null;
  for (const m of maps) {
    const prefix = m[src];
    if ((path === prefix || path.startsWith(`${prefix}/`)) && (!best || prefix.length > best[src].length)) best = m;
  }
  return best ? best[dst] + path.slice(best[src].length) : path;
}

function trimSlash(p: string): string {
  return p.length > 1 ? p.replace(/\/+$/, "") : p;
}
