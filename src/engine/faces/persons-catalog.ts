// The CLI's way into an index's catalog for persons work: the DuckDB file itself, without loading the image vectors
// (IndexStore.open would verify and maybe rebuild them, which persons commands never touch). Persons rows do not
// bump the catalog version either: the vectors file does not depend on them.
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { CATALOG_FILE, inTransaction, openCatalogFile } from "../store/catalog.ts";
import { readerOf, type RowReader } from "./persons-table.ts";

export interface PersonsCatalog {
  read: RowReader;
  /** One write transaction: committed whole or rolled back. */
  write<T>(work: (conn: DuckDBConnection) => Promise<T>): Promise<T>;
  close(): void;
}

export async function openPersonsCatalog(indexDir: string, opts: { readOnly: boolean }): Promise<PersonsCatalog> {
  const path = join(indexDir, CATALOG_FILE);
  if (!existsSync(path)) throw new Error(`no index at ${indexDir}; run imgd index first`);
  const { instance, release } = await openCatalogFile(path, opts.readOnly);
  const conn = await instance.connect();
  return {
    read: readerOf(conn),
    async write(work) {
      if (opts.readOnly) throw new Error(`${path} was opened read-only`);
      let out: Awaited<ReturnType<typeof work>> | undefined;
      await inTransaction(conn, async () => {
        out = await work(conn);
      });
      return out as Awaited<ReturnType<typeof work>>;
    },
    close() {
      conn.closeSync();
      instance.closeSync();
      release();
    },
  };
}
