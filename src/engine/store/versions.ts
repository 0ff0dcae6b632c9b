// Library versions recorded in every index manifest, so an index can be traced to the build that wrote it.
import pkg from "../../../package.json" with { type: "json" };
import { loadDuckDB } from "../native.ts";

export function storeVersions(): Record<string, string> {
  return {
    imgd: pkg.version,
    bun: Bun.version,
    duckdb: loadDuckDB().version(),
    usearch: pkg.dependencies.usearch,
    onnxruntime: pkg.dependencies["onnxruntime-node"],
    sharp: pkg.dependencies.sharp,
  };
}
