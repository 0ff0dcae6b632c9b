// Another index whose embeddings a run copies for files of the same content instead of decoding and embedding them
// again: a cluster job's merged index, for a re-run's workers, whose leased files include every one moved or touched
// since (the coordinator compares paths, sizes and mtimes, never content). Only the catalog is read: the rows hold
// every embedding, and a worker need not load the index's vectors.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { CATALOG_FILE, RECORD_COLUMNS, toRecord, type NewImage } from "./catalog.ts";
import { readManifest } from "./index-manifest.ts";
import type { IndexStore } from "./index-store.ts";

/** An indexed image of the donor: its row's facts about the picture (not the file's), its embedding, its id there. */
export interface DonatedImage {
  id: number;
  row: Pick<NewImage, "imohash" | "width" | "height" | "takenAt" | "cameraMake" | "cameraModel">;
  embedding: Float32Array;
}

export class IndexDonor {
  /** The donor's catalog as the receiving store sees it, in read() and writeRows() (e.g. `${alias}.images`). */
  static readonly alias = "donor";

  private constructor(
    /** The index the donor's rows are read through and copied into. */
    readonly store: IndexStore,
    private readonly dims: number,
  ) {}

  /**
   * The index at `dir` if there is one built with `model` (name and dims), else null; read through `store`, the
   * index that receives its rows, which holds its catalog attached read-only (so locked against writers) until close.
   */
  static async open(dir: string, model: { name: string; dims: number }, store: IndexStore): Promise<IndexDonor | null> {
    const manifest = readManifest(dir);
    const catalogPath = join(dir, CATALOG_FILE);
    if (!manifest || manifest.model.name !== model.name || manifest.model.dims !== model.dims || !existsSync(catalogPath)) return null;
    await store.attach(catalogPath, IndexDonor.alias);
    return new IndexDonor(store, model.dims);
  }

  /** An indexed image whose content hash (imohash) is `hash`, or null. */
  async find(hash: string): Promise<DonatedImage | null> {
    const [r] = await this.store.read(
      `SELECT ${RECORD_COLUMNS}, embedding FROM "${IndexDonor.alias}".images
       WHERE status = 'indexed' AND imohash = $1 AND embedding IS NOT NULL LIMIT 1`,
      [hash],
    );
    if (!r) return null;
    const { id, imohash, width, height, takenAt, cameraMake, cameraModel } = toRecord(r);
    const embedding = new Float32Array((r[14] as { bytes: Uint8Array }).bytes.slice().buffer);
    if (embedding.length !== this.dims) return null;
    return { id, row: { imohash, width, height, takenAt, cameraMake, cameraModel }, embedding };
  }

  async close(): Promise<void> {
    await this.store.detach(IndexDonor.alias);
  }
}
