// What a search hit shows (path, size, dimensions, date, camera) for every indexed image, held in columnar arrays
// so a search answers without a DuckDB round trip. Through `imgd serve` that round trip cost ~7 ms per request
// and, the catalog having one connection, serialised every concurrent search behind it. IndexStore keeps the
// cache in step: each of its writes hands the cache what changed before the write resolves.
import type { DuckDBValue } from "@duckdb/node-api";
import { localTime, type CatalogFilter, type ImageRecord } from "./catalog.ts";
import type { IdSet } from "./id-set.ts";
import { PathTable } from "./path-table.ts";

/** The fields of a record a search hit needs. */
export type HitRecord = Pick<ImageRecord, "id" | "path" | "size" | "width" | "height" | "takenAt" | "cameraMake" | "cameraModel">;

/** What one committed catalog write changed, as IndexStore reports it. */
export interface StoreChange {
  /** New rows (any status); only 'indexed' ones are cached. */
  added?: number[];
  removed?: number[];
  moved?: { id: number; path: string; size: number }[];
}

/** A stand-in for the catalog's record lookup that IndexStore.search can use, and tells of every write. */
export interface RecordCache {
  indexedRecords(ids: number[], filter?: CatalogFilter): HitRecord[];
  /** Ids of the indexed images passing the plain filters when at most `limit` do, else null; as Catalog.idsPassing. */
  idsPassing(filter: CatalogFilter, limit: number): number[] | null;
  /** Records passing the plain filters and `allowed`, ordered by path, `k` from `offset`: as Catalog's browse order. */
  browse(k: number, offset: number, filter: CatalogFilter, allowed: IdSet | null): HitRecord[];
  apply(change: StoreChange): Promise<void>;
}

/** The catalog reads the cache needs, as IndexStore exposes them. */
export interface RecordReader {
  readChunks(sql: string, onChunk: (columns: unknown[][]) => void): Promise<void>;
}

const NO_INT = -1;
/** Only what a hit shows: fewer columns read means less transient memory on load (~40 MB less at 100K rows). */
const HIT_COLUMNS = "id, path, size, width, height, strftime(taken_at, '%Y-%m-%dT%H:%M:%S'), camera_make, camera_model";

export class MetadataCache implements RecordCache {
  /** id -> slot + 1 (0: not cached). Ids are never reused, so this grows with the catalog's next id. */
  private slotOf = new Int32Array(1024);
  private ids = new Float64Array(1024);
  private readonly paths = new PathTable();
  private sizes = new Float64Array(1024);
  private widths = new Int32Array(1024);
  private heights = new Int32Array(1024);
  /** taken_at as wall-clock ms (NaN: none), compared the way the catalog compares it. */
  private taken = new Float64Array(1024);
  /** taken_at strings that the ms value would not print back identically. */
  private readonly takenOdd = new Map<number, string>();
  private cameraMake = new Uint32Array(1024);
  private cameraModel = new Uint32Array(1024);
  /** Camera strings are few and repeat: one copy each. Entry 0 is null. */
  private readonly strings: (string | null)[] = [null];
  private readonly stringIds = new Map<string, number>();
  private readonly freeSlots: number[] = [];
  private used = 0;

  private constructor(private readonly reader: RecordReader) {}

  /**
   * Reads every indexed row, a chunk of columns at a time so the transient JS values stay small: at 1M rows ~4x
   * faster than pages of 10K rows.
   */
  static async load(reader: RecordReader): Promise<MetadataCache> {
    const cache = new MetadataCache(reader);
    await cache.read("");
    return cache;
  }

  get size(): number {
    return this.used - this.freeSlots.length;
  }

  /** Records of the cached ids among `ids` that pass `filter`; the same answer as Catalog.indexedRecords. */
  indexedRecords(ids: number[], filter: CatalogFilter = {}): HitRecord[] {
    const passes = this.slotTest(filter);
    const out: HitRecord[] = [];
    for (const id of ids) {
      const slot = id < this.slotOf.length ? this.slotOf[id]! - 1 : -1;
      if (slot >= 0 && passes(slot)) out.push(this.record(slot));
    }
    return out;
  }

  /** One pass over typed arrays (~ms at 1M rows), so a search can score a selective filter's few images exactly. */
  idsPassing(filter: CatalogFilter, limit: number): number[] | null {
    const passes = this.slotTest(filter);
    const ids: number[] = [];
    for (let slot = 0; slot < this.used; slot++) {
      if (this.paths.folderKey(slot) === 0 || !passes(slot)) continue;
      if (ids.length === limit) return null;
      ids.push(this.ids[slot]!);
    }
    return ids;
  }

  /**
   * Paths are compared only where the page falls: one pass counts the passing rows per folder; folders sorted by
   * name, each with those below it (whose paths interleave with its own), are groups whose paths sort wholly before
   * or after each other's, so only the groups the page reaches are read out as paths and sorted.
   */
  browse(k: number, offset: number, filter: CatalogFilter, allowed: IdSet | null): HitRecord[] {
    const filterPasses = this.slotTest(filter);
    const passes = allowed ? (slot: number) => allowed.has(this.ids[slot]!) && filterPasses(slot) : filterPasses;
    const counts = new Uint32Array(this.paths.folderKeys);
    for (let slot = 0; slot < this.used; slot++) {
      const key = this.paths.folderKey(slot);
      if (key !== 0 && passes(slot)) counts[key]!++;
    }
    const keys: number[] = [];
    counts.forEach((n, key) => n > 0 && keys.push(key));
    const name = (key: number) => this.paths.folder(key);
    keys.sort((a, b) => (name(a) < name(b) ? -1 : name(a) > name(b) ? 1 : 0));
    const read = new Uint8Array(counts.length);
    let before = -1;
    for (let i = 0, seen = 0; i < keys.length && seen < offset + k; ) {
      const root = name(keys[i]!);
      let n = 0;
      let j = i;
      for (; j < keys.length && name(keys[j]!).startsWith(root); j++) n += counts[keys[j]!]!;
      if (seen + n > offset) {
        if (before < 0) before = seen;
        for (let m = i; m < j; m++) read[keys[m]!] = 1;
      }
      seen += n;
      i = j;
    }
    if (before < 0) return [];
    const page: { slot: number; path: string }[] = [];
    for (let slot = 0; slot < this.used; slot++) {
      if (read[this.paths.folderKey(slot)] === 1 && passes(slot)) page.push({ slot, path: this.paths.get(slot)! });
    }
    return page
      .sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0))
      .slice(offset - before, offset - before + k)
      .map((p) => this.record(p.slot));
  }

  /** Whether a live slot passes the plain filters (path prefix, taken range), as Catalog.indexedRecords decides. */
  private slotTest(filter: CatalogFilter): (slot: number) => boolean {
    const prefix = filter.pathPrefix ? this.paths.prefixTest(filter.pathPrefix) : null;
    const after = filter.takenAfter ? localTime(filter.takenAfter) : null;
    const before = filter.takenBefore ? localTime(filter.takenBefore) : null;
    if (after === null && before === null) return prefix ?? (() => true);
    // NaN (no date) fails both comparisons; an open end is an infinite bound. The array is read once: a test is
    // used at once, before any write could replace it.
    const from = after ?? -Infinity;
    const until = before ?? Infinity;
    const taken = this.taken;
    return (slot) => taken[slot]! >= from && taken[slot]! < until && (prefix === null || prefix(slot));
  }

  async apply(change: StoreChange): Promise<void> {
    for (const id of change.removed ?? []) this.drop(id);
    for (const m of change.moved ?? []) {
      const slot = m.id < this.slotOf.length ? this.slotOf[m.id]! - 1 : -1;
      if (slot < 0) continue;
      this.paths.set(slot, m.path);
      this.sizes[slot] = m.size;
    }
    const added = change.added ?? [];
    for (let i = 0; i < added.length; i += 1000) {
      await this.read(`AND id IN (${added.slice(i, i + 1000).map((id) => String(Math.trunc(id))).join(",")})`);
    }
  }

  /** Puts the indexed rows that `condition` (SQL after a WHERE) selects. */
  private async read(condition: string): Promise<void> {
    await this.reader.readChunks(`SELECT ${HIT_COLUMNS} FROM images WHERE status = 'indexed' ${condition}`, (columns) => {
      for (let i = 0; i < columns[0]!.length; i++) this.put(columns.map((c) => c[i]));
    });
  }

  private record(slot: number): HitRecord {
    const w = this.widths[slot]!;
    const h = this.heights[slot]!;
    return {
      id: this.ids[slot]!,
      path: this.paths.get(slot)!,
      size: this.sizes[slot]!,
      width: w === NO_INT ? null : w,
      height: h === NO_INT ? null : h,
      takenAt: this.takenText(slot),
      cameraMake: this.strings[this.cameraMake[slot]!]!,
      cameraModel: this.strings[this.cameraModel[slot]!]!,
    };
  }

  private takenText(slot: number): string | null {
    const odd = this.takenOdd.get(slot);
    if (odd !== undefined) return odd;
    const ms = this.taken[slot]!;
    return Number.isNaN(ms) ? null : new Date(ms).toISOString().slice(0, 19);
  }

  /** One row selected with HIT_COLUMNS, converted the way Catalog's toRecord converts it. */
  private put(row: unknown[]): void {
    const [idValue, path, size, width, height, takenAt, make, model] = row as DuckDBValue[];
    const id = Number(idValue);
    this.drop(id);
    const slot = this.freeSlots.pop() ?? this.used++;
    this.ensureCapacity(slot + 1, id + 1);
    this.slotOf[id] = slot + 1;
    this.ids[slot] = id;
    this.paths.set(slot, path as string);
    this.sizes[slot] = Number(size);
    this.widths[slot] = width === null ? NO_INT : (width as number);
    this.heights[slot] = height === null ? NO_INT : (height as number);
    const taken = takenAt as string | null;
    const ms = taken === null ? null : localTime(taken);
    this.taken[slot] = ms ?? NaN;
    this.takenOdd.delete(slot);
    if (taken !== null && (ms === null || new Date(ms).toISOString().slice(0, 19) !== taken)) this.takenOdd.set(slot, taken);
    this.cameraMake[slot] = this.intern(make as string | null);
    this.cameraModel[slot] = this.intern(model as string | null);
  }

  private drop(id: number): void {
    const slot = id < this.slotOf.length ? this.slotOf[id]! - 1 : -1;
    if (slot < 0) return;
    this.slotOf[id] = 0;
    this.paths.clear(slot);
    this.takenOdd.delete(slot);
    this.freeSlots.push(slot);
  }

  private intern(s: string | null): number {
    if (s === null) return 0;
    let i = this.stringIds.get(s);
    if (i === undefined) {
      i = this.strings.push(s) - 1;
      this.stringIds.set(s, i);
    }
    return i;
  }

  private ensureCapacity(slots: number, ids: number): void {
    if (ids > this.slotOf.length) this.slotOf = grow(this.slotOf, ids);
    if (slots <= this.ids.length) return;
    this.ids = grow(this.ids, slots);
    this.sizes = grow(this.sizes, slots);
    this.widths = grow(this.widths, slots);
    this.heights = grow(this.heights, slots);
    this.taken = grow(this.taken, slots);
    this.cameraMake = grow(this.cameraMake, slots);
    this.cameraModel = grow(this.cameraModel, slots);
  }
}

function grow<T extends Int32Array | Uint32Array | Float64Array>(a: T, atLeast: number): T {
  const next = new (a.constructor as new (n: number) => T)(Math.max(atLeast, Math.ceil(a.length * 1.5)));
  next.set(a);
  return next;
}
