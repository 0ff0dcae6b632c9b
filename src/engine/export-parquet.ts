// `imgd export --parquet OUT`: the index as files other tools read today — OUT (Parquet: path, metadata and the
// embedding as FLOAT[dims], written by DuckDB's COPY) and OUT.json (model, dims, counts). Failed files are left out.
import { join } from "node:path";
import { loadDuckDB } from "./native.ts";
import { toLocalPath, type PathMapping } from "./path-map.ts";
import { CATALOG_FILE, explainCatalogLock } from "./store/catalog.ts";
import { readManifest } from "./store/index-manifest.ts";
import { commitFile } from "./store/atomic-file.ts";

export interface ExportReport {
  parquet: string;
  metadata: string;
  rows: number;
  dims: number;
  model: string;
}

export async function exportParquet(indexDir: string, out: string, pathMap: PathMapping[] = []): Promise<ExportReport> {
  const manifest = readManifest(indexDir);
  if (!manifest) throw new Error(`no index at ${indexDir}`);
  const dims = manifest.model.dims;
  const duck = loadDuckDB();
  const instance = await duck.DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  try {
    const catalog = join(indexDir, CATALOG_FILE);
    await conn.run(`ATTACH '${sqlString(catalog)}' AS src (READ_ONLY)`).catch((error) => {
      throw explainCatalogLock(catalog, error);
    });
    await conn.run(`CREATE TABLE export (path VARCHAR, size BIGINT, width INT, height INT, taken_at TIMESTAMP,
      camera_make VARCHAR, camera_model VARCHAR, imohash VARCHAR, embedding FLOAT[${dims}])`);
    // Embeddings are raw float32 BLOBs in the catalog; SQL cannot reinterpret bytes as floats, so they pass through here.
    const appender = await conn.createAppender("export");
    for (let after = -1; ; ) {
      const rows = (
        await conn.runAndReadAll(`SELECT id, path, size, width, height, strftime(taken_at, '%Y-%m-%d %H:%M:%S'), camera_make,
          camera_model, imohash, embedding FROM src.images WHERE status = 'indexed' AND id > ${after} ORDER BY id LIMIT 4096`)
      ).getRows();
      if (rows.length === 0) break;
      for (const r of rows) {
        appender.appendVarchar(toLocalPath(r[1] as string, pathMap));
        appender.appendBigInt(BigInt(r[2] as bigint));
        nullable(r[3], (v) => appender.appendInteger(v as number), appender);
        nullable(r[4], (v) => appender.appendInteger(v as number), appender);
        nullable(r[5], (v) => appender.appendVarchar(v as string), appender);
        nullable(r[6], (v) => appender.appendVarchar(v as string), appender);
        nullable(r[7], (v) => appender.appendVarchar(v as string), appender);
        nullable(r[8], (v) => appender.appendVarchar(v as string), appender);
        const bytes = (r[9] as { bytes: Uint8Array }).bytes;
        appender.appendArray(Array.from(new Float32Array(bytes.slice().buffer)));
        appender.endRow();
      }
      after = Number(rows[rows.length - 1]![0]);
    }
    appender.closeSync();
    const [count] = (await conn.runAndReadAll("SELECT count(*) FROM export")).getRows();
    // COPY writes beside and renames itself only with a temp name we pick: commit the result like every other file.
    const tmp = `${out}.${process.pid}.parquet`;
    await conn.run(`COPY (SELECT * FROM export ORDER BY path) TO '${sqlString(tmp)}' (FORMAT parquet, COMPRESSION zstd)`);
    const { renameSync } = await import("node:fs");
    renameSync(tmp, out);
    const metadata = `${out}.json`;
    const report: ExportReport = { parquet: out, metadata, rows: Number(count![0]), dims, model: manifest.model.name };
    commitFile(
      metadata,
      `${JSON.stringify({ ...report, model: manifest.model, vectors: { metric: manifest.vectors.metric }, exportedAt: new Date().toISOString(), source: indexDir }, null, 2)}\n`,
    );
    return report;
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

function nullable(v: unknown, append: (v: unknown) => void, a: { appendNull(): void }): void {
  if (v === null || v === undefined) a.appendNull();
  else append(v);
}

function sqlString(s: string): string {
  return s.replace(/'/g, "''");
}
