// `--hosts FILE`: one worker host per line, `name user@address[:port] [key=value ...]`; `#` starts a comment.
// Keys: storage= (the storage root on that host; required), dir= (where imgd lives, default .imgd under $HOME),
// threads=, key= (private key file), path-map=FROM=TO (repeatable).
import { readFileSync } from "node:fs";

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
  text.split("\n").forEach((raw, i) => {
    const line = raw.replace(/#.*$/, "").trim();
    if (!line) return;
    const where = `${source}:${i + 1}`;
    const [name, target, ...rest] = line.split(/\s+/);
    const m = target?.match(/^([^@\s]+)@([^:\s]+|\[[^\]]+\])(?::(\d+))?$/);
    if (!name || !m) throw new Error(`${where}: expected "name user@address[:port] storage=DIR ...", got "${raw.trim()}"`);
    const opts: Record<string, string> = {};
    const pathMaps: string[] = [];
    for (const kv of rest) {
      const eq = kv.indexOf("=");
      if (eq <= 0) throw new Error(`${where}: expected key=value, got "${kv}"`);
      const k = kv.slice(0, eq);
      const v = kv.slice(eq + 1);
      if (k === "path-map") pathMaps.push(v);
      else if (["storage", "dir", "threads", "key"].includes(k)) opts[k] = v;
      else throw new Error(`${where}: unknown key "${k}"`);
    }
    if (!opts.storage) throw new Error(`${where}: ${name} needs storage=DIR`);
    const threads = opts.threads ? Number(opts.threads) : undefined;
    if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) throw new Error(`${where}: threads= takes a whole number`);
    hosts.push({
      name,
      username: m[1]!,
      address: m[2]!.replace(/^\[|\]$/g, ""),
      port: m[3] ? Number(m[3]) : 22,
      storage: opts.storage,
      dir: opts.dir ?? ".imgd",
      threads,
      key: opts.key,
      pathMaps,
    });
  });
  return hosts;
}

export function readHostsFile(path: string): DeployHost[] {
  return parseHostsFile(readFileSync(path, "utf8"), path);
}
