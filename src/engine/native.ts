// The four native libraries are loaded only through here. From a checkout they resolve from node_modules; inside
// the compiled `dist/imgd` they resolve from the native tree that build.ts embedded (native-bundle.ts).
import { createRequire } from "node:module";
import { nativeEntry, nativeRequireBase } from "./native-bundle.ts";
import { setNativeEnvDefault } from "./native-memory.ts";

type Sharp = typeof import("sharp").default;
type Ort = typeof import("onnxruntime-node");
type USearch = typeof import("usearch");
type DuckDB = typeof import("@duckdb/node-api");

function nativeRequire(id: string): unknown {
  return createRequire(nativeRequireBase())(nativeEntry(id));
}

function memo<T>(load: () => T): () => T {
  let value: T | undefined;
  return () => (value ??= load());
}

export const loadSharp = memo(() => {
  const mod = nativeRequire("sharp") as Sharp & { default?: Sharp };
  const sharp = (mod.default ?? mod) as Sharp;
  // libvips caches recent operations (up to 50 MB) to answer a repeat at once; imgd decodes each file once and
  // keeps its own thumbnail cache, so that cache only holds memory.
  sharp.cache(false);
  return sharp;
});
export const loadOrt = memo(() => {
  // onnxruntime 1.29+ on Linux starts Microsoft's telemetry at load: an event database and a device id under
  // ~/.cache/Microsoft/DeveloperTools, an empty /tmp/mat-debug-<pid>.log per process, uploads when it finds a CA
  // bundle. A photo indexer sends nothing anywhere; ORT_DISABLE_TELEMETRY=0 in the environment turns it back on.
  setNativeEnvDefault("ORT_DISABLE_TELEMETRY", "1");
  return nativeRequire("onnxruntime-node") as Ort;
});
export const loadUSearch = memo(() => nativeRequire("usearch") as USearch);
export const loadDuckDB = memo(() => nativeRequire("@duckdb/node-api") as DuckDB);
