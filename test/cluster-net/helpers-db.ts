// Reads a finished job's DuckDB files directly (read-only), to assert on what is really on disk.
import { join } from "node:path";
import { loadDuckDB } from "../../src/engine/native.ts";

export async function readRows(dbPath: string, sql: string): Promise<unknown[][]> {
  const instance = await loadDuckDB().DuckDBInstance.create(dbPath, { access_mode: "READ_ONLY" });
  const conn = await instance.connect();
  try {
    return (await conn.runAndReadAll(sql)).getRows();
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

export async function mergedPaths(storage: string): Promise<string[]> {
  const rows = await readRows(join(storage, "index", "catalog.duckdb"), "SELECT path FROM images ORDER BY path");
  return rows.map((r) => r[0] as string);
}
