// Where native packages are required from. A checkout uses its own node_modules. The compiled binary unpacks
// them into a cache dir (native-extract.ts), but Bun's compiled executables do not resolve bare package names from
// disk, so for requires coming from inside that tree we resolve them ourselves: the usual node_modules layout,
// package.json "exports" (require conditions) and "main".
import Module from "node:module";
import { existsSync, readFileSync, statSync } from "node:fs";
import { dirname, join } from "node:path";

let treeDir: string | undefined;

/** The unpacked native tree in the compiled binary (worker threads must be told it), undefined in a checkout. */
export function nativeTreeDir(): string | undefined {
  return treeDir;
}

export function nativeRequireBase(): string {
  return treeDir ? join(treeDir, "imgd-native.js") : import.meta.path;
}

/** Called once by the compiled binary's entry point after it unpacked the embedded native packages. */
export function setNativeRequireBase(dir: string): void {
  treeDir = dir;
  const mod = Module as unknown as { _resolveFilename: (req: string, parent: unknown, ...rest: unknown[]) => string };
  const original = mod._resolveFilename;
  mod._resolveFilename = function (request, parent, ...rest) {
    const from = (parent as { filename?: string } | undefined)?.filename ?? "";
    if (isBareRequest(request) && from.startsWith(dir)) {
      const resolved = resolvePackageRequest(request, join(dir, "node_modules"));
      if (resolved) return original.call(this, resolved, parent, ...rest);
    }
    return original.call(this, request, parent, ...rest);
  };
}

function isBareRequest(request: string): boolean {
  return !/^(\.|\/|node:|bun:)/.test(request) && !Module.builtinModules.includes(request);
}

const CONDITIONS = ["node", "require", "default"];

function pickCondition(target: unknown): string | undefined {
  if (typeof target === "string") return target;
  if (Array.isArray(target)) return target.map(pickCondition).find(Boolean);
  if (target && typeof target === "object") {
    for (const [key, value] of Object.entries(target)) {
      if (CONDITIONS.includes(key)) {
        const picked = pickCondition(value);
        if (picked) return picked;
      }
    }
  }
  return undefined;
}

function fromExports(exports: unknown, subpath: string): string | undefined {
  const map =
    typeof exports === "object" && exports && !Array.isArray(exports) && Object.keys(exports)[0]?.startsWith(".")
      ? (exports as Record<string, unknown>)
      : { ".": exports };
  if (subpath in map) return pickCondition(map[subpath]);
  for (const [key, value] of Object.entries(map)) {
    const star = key.indexOf("*");
    if (star < 0) continue;
    const [head, tail] = [key.slice(0, star), key.slice(star + 1)];
    if (subpath.startsWith(head) && subpath.endsWith(tail)) {
      const match = subpath.slice(head.length, subpath.length - tail.length);
      return pickCondition(value)?.replace("*", match);
    }
  }
  return undefined;
}

function asFile(path: string): string | undefined {
  for (const candidate of [path, `${path}.js`, `${path}.cjs`, `${path}.json`, `${path}.node`, join(path, "index.js")]) {
    if (existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

export function resolvePackageRequest(request: string, nodeModules: string): string | undefined {
  const parts = request.split("/");
  const name = request.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0]!;
  const pkgDir = join(nodeModules, name);
  const pkgJson = join(pkgDir, "package.json");
  if (!existsSync(pkgJson)) return undefined;
  const pkg = JSON.parse(readFileSync(pkgJson, "utf8"));
  const subpath = `.${request.slice(name.length)}`;
  if (pkg.exports !== undefined) {
    const target = fromExports(pkg.exports, subpath);
    if (target) return join(pkgDir, target);
  }
  if (subpath === ".") return asFile(join(pkgDir, pkg.main ?? "index.js")) ?? asFile(join(pkgDir, "index"));
  return asFile(join(pkgDir, subpath));
}

/** Resolves one of the native root packages for the compiled binary, or returns the id unchanged in a checkout. */
export function nativeEntry(id: string): string {
  if (!treeDir) return id;
  const resolved = resolvePackageRequest(id, join(treeDir, "node_modules"));
  if (!resolved) throw new Error(`native package ${id} is missing from ${dirname(nativeRequireBase())}`);
  return resolved;
}
