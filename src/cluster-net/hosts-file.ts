// `--hosts FILE`: one worker host per line, `name user@address[:port] [key=value ...]`; `#` starts a comment.
// Keys: storage= (the storage root on that host; required), dir= (where imgd lives, default .imgd under $HOME),
// threads=, key= (private key file), path-map=FROM=TO (repeatable).
import { readFileSync } from "node:fs";
import { parsePathMaps } from "../engine/path-map.ts";

export interface DeployHost {
  name: string;
  username: string;
  address: string;
  port: number;
  storage: string;
  dir: string;
  threads?: number;
  key?: string;
  pathMaps: string[];
}

export function parseHostsFile(text: string, source = "hosts file"): DeployHost[] {
  const hosts: DeployHost[] = [];
  // Line numbers by name, and by where the worker lives: two rows for one remote dir would upload, start and kill
  // each other's worker side by side (deploy works on every host at once).
  const names = new Map<string, number>();
  const places = new Map<string, number>();
  // CRLF too: a carriage return left at the end kept a trailing comment from being stripped.
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) return;
    const where = `${source}:${i + 1}`;
    const [name, target, ...rest] = line.split(/\s+/);
    const m = target?.match(/^([^@\s]+)@([^:\s]+|\[[^\]]+\])(?::(\d+))?$/);
    if (!name || !m) throw new Error(`${where}: expected "name user@address[:port] storage=DIR ...", got "${raw.trim()}"`);
    const port = m[3] ? Number(m[3]) : 22;
    if (!(port >= 1 && port <= 65535)) throw new Error(`${where}: port ${m[3]} is not between 1 and 65535`);
    const opts: Record<string, string> = {};
    const pathMaps: string[] = [];
    for (const kv of rest) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new Error(`${where}: expected key=value, got "${kv}"`);
      const k = kv.slice(0, eq);
      const v = kv.slice(eq + 1);
      if (k === "path-map") {
        // Checked here, not by the worker once started: its error would only show in that host's log.
        try {
          parsePathMaps([v]);
        } catch (err) {
          throw new Error(`${where}: ${err instanceof Error ? err.message : err}`);
        }
        pathMaps.push(v);
      } else if (["storage", "dir", "threads", "key"].includes(k)) {
        if (k in opts) throw new Error(`${where}: ${k}= is given twice`);
        opts[k] = v;
      } else throw new Error(`${where}: unknown key "${k}"`);
    }
    if (!opts.storage) throw new Error(`${where}: ${name} needs storage=DIR`);
    const threads = opts.threads ? Number(opts.threads) : undefined;
    if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new Error(`${where}: threads= takes a whole number`);
    const host: DeployHost = {
      name,
      username: m[1]!,
      address: m[2]!.replace(/^\[|\]$/g, ""),
      port,
      storage: opts.storage,
      dir: opts.dir ?? ".imgd",
      threads,
      key: opts.key,
      pathMaps,
    };
    const sameName = names.get(name);
    if (sameName !== undefined) throw new Error(`${where}: host ${name} is already on line ${sameName}`);
    const place = `${host.username}@${host.address}:${host.port} ${host.dir}`;
    const samePlace = places.get(place);
    if (samePlace !== undefined) {
      throw new Error(`${where}: ${name} runs in the same dir as line ${samePlace} (${host.username}@${host.address}:${host.port}, dir=${host.dir}); give it another dir=`);
    }
    names.set(name, i + 1);
    places.set(place, i + 1);
    hosts.push(host);
  });
  return hosts;
}

export function readHostsFile(path: string): DeployHost[] {
  return parseHostsFile(readFileSync(path, "utf8"), path);
}
