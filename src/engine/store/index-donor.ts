// Another index whose embeddings a run copies for files of the same content instead of decoding and embedding them
// again: a cluster job's merged index, for a re-run's workers, whose leased files include every one moved or touched
// since (the coordinator compares paths, sizes and mtimes, never content). Only the catalog is read: the rows hold
// every embedding, and a worker need not load the index's vectors.
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CATALOG_FILE, openCatalogFile, RECORD_COLUMNS, toRecord, type NewImage } from "./catalog.ts";
import { readManifest } from "./index-manifest.ts";

/** An indexed image of the donor: its row's facts about the picture (not the file's), its embedding, its id there. */
export interface DonatedImage {
  id: number;
  row: Pick<NewImage, "imohash" | "width" | "height" | "takenAt" | "cameraMake" | "cameraModel">;
  embedding: Float32Array;
}

export class IndexDonor {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly catalogPath: string,
    private readonly instance: DuckDBInstance,
    private readonly conn: DuckDBConnection,
    private readonly dims: number,
    private readonly release: () => void,
  ) {}

  /** The index at `dir` if there is one built with `model` (name and dims), else null. */
  static async open(dir: string, model: { name: string; dims: number }): Promise<IndexDonor | null> {
    const manifest = readManifest(dir);
    const catalogPath = join(dir, CATALOG_FILE);
    if (!manifest || manifest.model.name !== model.name || manifest.model.dims !== model.dims || !existsSync(catalogPath)) return null;
    const { instance, release } = await openCatalogFile(catalogPath, true);
    return new IndexDonor(catalogPath, instance, await instance.connect(), model.dims, release);
  }

  /** An indexed image whose content hash (imohash) is `hash`, or null. */
  find(hash: string): Promise<DonatedImage | null> {
    const run = this.queue.then(async () => {
      const [r] = (
        await this.conn.runAndReadAll(
          `SELECT ${RECORD_COLUMNS}, embedding FROM images WHERE status = 'indexed' AND imohash = $1 AND embedding IS NOT NULL LIMIT 1`,
          [hash],
        )
      ).getRows();
      if (!r) return null;
      const { id, imohash, width, height, takenAt, cameraMake, cameraModel } = toRecord(r);
      const embedding = new Float32Array((r[14] as { bytes: Uint8Array }).bytes.slice().buffer);
      if (embedding.length !== this.dims) return null;
      return { id, row: { imohash, width, height, takenAt, cameraMake, cameraModel }, embedding };
    });
    this.queue = run.catch(() => {});
    return run;
  }

  async close(): Promise<void> {
    await this.queue;
    this.conn.closeSync();
    this.instance.closeSync();
    this.release();
  }
}
