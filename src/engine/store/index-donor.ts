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

const KEY_PAGE = 50_000;

function fingerprint(hash: string): number {
  return Bun.hash.crc32(hash);
}

/** The ids whose key in `keys` (sorted) carries `fp`. */
function candidates(keys: BigUint64Array, fp: number): bigint[] {
  const low = BigInt(fp) << 32n;
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < low) lo = mid + 1;
    else hi = mid;
  }
  const out: bigint[] = [];
  for (let i = lo; i < keys.length && keys[i]! >> 32n === BigInt(fp); i++) out.push(keys[i]! & 0xffffffffn);
  return out;
}

export class IndexDonor {
  /** The donor's catalog as the receiving store sees it, in read() and writeRows() (e.g. `${alias}.images`). */
  static readonly alias = "donor";

  private keys: Promise<BigUint64Array | null> | undefined;

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
    // A read that failed is not kept: the next lookup tries again (a share that did not answer for a moment).
    this.keys ??= this.readKeys().catch((err) => {
      this.keys = undefined;
      throw err;
    });
    const keys = await this.keys;
    for (const id of keys ? candidates(keys, fingerprint(hash)) : [null]) {
      const [r] = await this.store.read(
        `SELECT ${RECORD_COLUMNS}, embedding FROM "${IndexDonor.alias}".images
         WHERE status = 'indexed' AND imohash = $1 AND embedding IS NOT NULL ${id === null ? "" : "AND id = $2"} LIMIT 1`,
        id === null ? [hash] : [hash, id],
      );
      if (!r) continue;
      const { id: donorId, imohash, width, height, takenAt, cameraMake, cameraModel } = toRecord(r);
      const embedding = new Float32Array((r[14] as { bytes: Uint8Array }).bytes.slice().buffer);
      if (embedding.length !== this.dims) return null;
      return { id: donorId, row: { imohash, width, height, takenAt, cameraMake, cameraModel }, embedding };
    }
    return null;
  }

  /**
   * Every embedded row of the donor as fingerprint << 32 | id, sorted: a lookup by imohash scanned the donor's whole
   * catalog (~40 ms at 1M rows, for each new file of a re-run, most of which the donor does not have), where this
   * answers most with a binary search and reads the others by primary key. 8 bytes a row; null (lookups scan) if an
   * id does not fit in 32 bits.
   */
  private async readKeys(): Promise<BigUint64Array | null> {
    const [[count, maxId]] = (await this.store.read(
      `SELECT count(*), max(id) FROM "${IndexDonor.alias}".images WHERE status = 'indexed' AND embedding IS NOT NULL`,
    )) as [[bigint, bigint | null]];
    if (maxId !== null && maxId >= 2n ** 32n) return null;
    const keys = new BigUint64Array(Number(count));
    let n = 0;
    for (let after = 0n; n < keys.length; ) {
      const rows = await this.store.read(
        `SELECT id, imohash FROM "${IndexDonor.alias}".images
         WHERE status = 'indexed' AND embedding IS NOT NULL AND id > $1 ORDER BY id LIMIT ${KEY_PAGE}`,
        [after],
      );
      for (const [id, hash] of rows) if (n < keys.length) keys[n++] = (BigInt(fingerprint(String(hash))) << 32n) | (id as bigint);
      if (rows.length < KEY_PAGE) break;
      after = rows[rows.length - 1]![0] as bigint;
    }
    return keys.subarray(0, n).sort();
  }

  async close(): Promise<void> {
    await this.store.detach(IndexDonor.alias);
  }
}
