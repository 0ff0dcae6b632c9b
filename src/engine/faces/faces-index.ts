// faces.usearch: an HNSW index over every face embedding, keyed by face id, for "faces like this one" across the
// whole collection. Derived from the faces table like vectors.usearch is from the images: a stamp of the face ids
// it reflects (count, max id, id sum; ids are never reused) says whether it is current; a stale one is repaired
// by key difference, an unreadable one rebuilt.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { Index } from "usearch";
import { loadUSearch } from "../native.ts";
import { commitFile, commitFileWith } from "../store/atomic-file.ts";
import { TwinGraph, TwinIds } from "../store/twin-graph.ts";
import { fileDigest, fileSize } from "../store/vectors.ts";
import { blobToFloats, hasTable, idList, PersonsError, type RowReader } from "./persons-table.ts";

export const FACES_INDEX_FILE = "faces.usearch";
const STAMP_FILE = "faces.usearch.json";
const PAGE = 8192;

interface Stamp {
  count: number;
  maxId: number;
  idSum: string;
  dims: number;
}

/** What the stamp file records besides the face ids: the committed file, checked before loading (USearch crashes on a corrupt one). */
interface SavedStamp extends Stamp {
  sha256: string;
  bytes: number;
  /** Face ids sharing a node with an identical embedding (the same photo twice); absent before twins: rebuilt. */
  twins?: number[][];
}

export interface FaceMatch {
  faceId: number;
  /** Cosine similarity. */
  score: number;
}

export type FacesIndexRecovery = "none" | "repaired" | "rebuilt" | "created";

export class FacesIndex {
  private constructor(
    private readonly graph: TwinGraph,
    readonly dims: number,
    private stamp: Stamp,
  ) {}

  /**
   * The index for the faces `read` sees, from `dir` when the file there is usable; `dir` null keeps it in memory.
   * Brings it up to date and, with a `dir`, commits it when anything changed.
   */
  static async open(read: RowReader, dir: string | null): Promise<{ index: FacesIndex; recovery: FacesIndexRecovery }> {
    const current = await tableStamp(read);
    const saved = dir ? readStamp(dir) : null;
    let index: FacesIndex | null = null;
    let recovery: FacesIndexRecovery = "none";
    if (dir && saved?.twins && saved.dims === current.dims && intact(join(dir, FACES_INDEX_FILE), saved)) {
      try {
        const loaded = newIndex(saved.dims);
        loaded.load(join(dir, FACES_INDEX_FILE));
        const graph = new TwinGraph(loaded, saved.dims, TwinIds.fromJSON(saved.twins));
        index = new FacesIndex(graph, saved.dims, { count: saved.count, maxId: saved.maxId, idSum: saved.idSum, dims: saved.dims });
      } catch {
        index = null;
      }
    }
    if (index && !sameStamp(index.stamp, current, index.size) && current.dims === index.dims) {
      await index.repair(read, current);
      recovery = "repaired";
    }
    if (!index) {
      index = new FacesIndex(new TwinGraph(newIndex(current.dims), current.dims), current.dims, current);
      // An index built without --faces has no faces table to read.
      if (current.count > 0) await index.addWhere(read, "TRUE");
      recovery = saved ? "rebuilt" : "created";
    }
    index.stamp = current;
    if (dir && recovery !== "none" && current.count > 0) index.commit(dir);
    return { index, recovery };
  }

  get size(): number {
    return this.graph.size;
  }

  /**
   * This index brought up to date with the faces table (one aggregate query when nothing changed), or a rebuilt one
   * when the embeddings changed size; committed to `dir` when anything changed.
   */
  async current(read: RowReader, dir: string | null): Promise<FacesIndex> {
    const now = await tableStamp(read);
    if (sameStamp(this.stamp, now, this.size)) return this;
    if (now.dims !== this.dims && now.count > 0) return (await FacesIndex.open(read, dir)).index;
    await this.repair(read, now);
    this.stamp = now;
    if (dir) this.commit(dir);
    return this;
  }

  /** Nearest faces to each of the n queries (row-major), best first; one batched native call. */
  search(queries: Float32Array, n: number, k: number): FaceMatch[][] {
    // One thread: a multi-threaded batch search needs capacity reserved per thread ahead of time.
    return this.graph.search(queries, n, k, 1).map((matches) => matches.map((m) => ({ faceId: m.id, score: 1 - m.distance })));
  }

  commit(dir: string): void {
    const path = join(dir, FACES_INDEX_FILE);
    commitFileWith(path, (tmp) => this.graph.index.save(tmp));
    // The stamp follows the file: a crash between the two leaves a stamp whose digest fails, so the next open rebuilds.
    const saved: SavedStamp = { ...this.stamp, ...fileDigest(path), twins: this.graph.twins.toJSON() };
    commitFile(join(dir, STAMP_FILE), JSON.stringify(saved));
  }

  private async repair(read: RowReader, current: Stamp): Promise<void> {
    const ids = (await read("SELECT id FROM faces")).map((r) => Number(r[0]));
    const inTable = new Set(ids);
    const gone: number[] = [];
    for (let id = 1; id <= Math.max(this.stamp.maxId, current.maxId); id++) if (!inTable.has(id)) gone.push(id);
    this.graph.remove(gone);
    if (ids.length === 0) return;
    const has = this.graph.contains(ids);
    const missing = ids.filter((_, i) => !has[i]);
    for (let i = 0; i < missing.length; i += PAGE) await this.addWhere(read, `id IN (${idList(missing.slice(i, i + PAGE))})`);
  }

  private async addWhere(read: RowReader, where: string): Promise<void> {
    for (let after = -1; ; ) {
      const rows = await read(`SELECT id, embedding FROM faces WHERE id > ${after} AND ${where} ORDER BY id LIMIT ${PAGE}`);
      if (rows.length === 0) return;
      const vectors = new Float32Array(rows.length * this.dims);
      rows.forEach((r, i) => vectors.set(blobToFloats(r[1]!), i * this.dims));
      this.graph.add(rows.map((r) => Number(r[0])), vectors);
      after = Number(rows[rows.length - 1]![0]);
    }
  }
}

async function tableStamp(read: RowReader): Promise<Stamp> {
  if (!(await hasTable(read, "faces"))) return { count: 0, maxId: 0, idSum: "0", dims: 0 };
  const [[count, maxId, idSum, bytes]] = (await read(
    "SELECT count(*), coalesce(max(id), 0), coalesce(sum(id), 0)::VARCHAR, coalesce(max(octet_length(embedding)), 0) FROM faces",
  )) as [[bigint, bigint, string, bigint]];
  return { count: Number(count), maxId: Number(maxId), idSum, dims: Number(bytes) / 4 };
}

function sameStamp(a: Stamp, b: Stamp, size: number): boolean {
  return a.count === b.count && a.maxId === b.maxId && a.idSum === b.idSum && a.dims === b.dims && size === b.count;
}

function intact(path: string, saved: SavedStamp): boolean {
  return fileSize(path) === saved.bytes && fileDigest(path).sha256 === saved.sha256;
}

function readStamp(dir: string): SavedStamp | null {
  const path = join(dir, STAMP_FILE);
  if (!existsSync(path) || !existsSync(join(dir, FACES_INDEX_FILE))) return null;
  try {
    const s = JSON.parse(readFileSync(path, "utf8")) as SavedStamp;
    return Number.isInteger(s.count) && Number.isInteger(s.dims) && s.dims > 0 && typeof s.sha256 === "string" ? s : null;
  } catch {
    return null;
  }
}

function newIndex(dims: number): Index {
  const { Index } = loadUSearch();
  return new Index({
    dimensions: Math.max(dims, 1),
    metric: "cos" as never,
    quantization: "f32" as never,
    connectivity: 0,
    expansion_add: 0,
    expansion_search: 0,
    multi: false,
  });
}

/** Faces most like face `faceId` anywhere in the collection (itself excluded), best first. */
export async function similarFaceIds(read: RowReader, index: FacesIndex, faceId: number, k: number): Promise<FaceMatch[]> {
  const rows = (await hasTable(read, "faces")) ? await read(`SELECT embedding FROM faces WHERE id = ${idList([faceId])}`) : [];
  if (rows.length === 0) throw new PersonsError("not-found", `no face ${faceId}`);
  const query = blobToFloats(rows[0]![0]!);
  return index.search(query, 1, k + 1)[0]!.filter((m) => m.faceId !== faceId).slice(0, k);
}
