// vectors.f16: what an i8 index scores its candidates against. i8 distances rank only coarsely, so search takes
// several times the candidates it needs from the graph and scores them against these f16 rows, read with pread:
// they live in the page cache instead of the process (an f16 graph keeps 51 MB more resident per 100K 512-d
// vectors), and no catalog query sits on every search's path.
//
// Append-only fixed-size records: [u32 id][u32 flags][dims x f16]. Ids are never reused and an image's embedding
// never changes under its id, so no record is ever wrong: a crash can only lose trailing records (re-added from
// the catalog on the next writable open) or tear the last one (ignored, then cut off).
import { closeSync, constants, fstatSync, fsyncSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { commitFileWith } from "./atomic-file.ts";

export const EXACT_FILE = "vectors.f16";

const HEADER_BYTES = 8;
const LIVE = 0;
const REMOVED = 1;
/** Records read per chunk while scanning on open. */
const SCAN_RECORDS = 4096;
/** Compact on commit once dead records outnumber live ones by this many. */
const COMPACT_SLACK = 1024;

export class ExactRows {
  /** id -> record index + 1; 0: no live record. */
  private slots = new Int32Array(1024);
  private records = 0;
  private live = 0;
  private readonly recordBytes: number;
  private readonly row: Uint8Array;

  private constructor(
    private fd: number,
    private readonly path: string,
    private readonly dims: number,
    private readonly writable: boolean,
  ) {
    this.recordBytes = HEADER_BYTES + dims * 2;
    this.row = new Uint8Array(this.recordBytes);
  }

  /**
   * Opens (a writable open creates) `path` and reads which id each record holds; ids are below `maxId` (the
   * catalog's next id). A read-only open of a missing file is empty.
   */
  static open(path: string, dims: number, writable: boolean, maxId = 2 ** 31 - 1): ExactRows {
    let fd: number;
    try {
      fd = writable ? openReadWrite(path) : openSync(path, "r");
    } catch (error) {
      if (writable || (error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      return new ExactRows(-1, path, dims, false);
    }
    const rows = new ExactRows(fd, path, dims, writable);
    rows.scan(maxId);
    return rows;
  }

  /** Ids with a live row. */
  get size(): number {
    return this.live;
  }

  has(id: number): boolean {
    return (this.slots[id] ?? 0) > 0;
  }

  /** The ids among `ids` that have no row. */
  missing(ids: Iterable<number>): number[] {
    const out: number[] = [];
    for (const id of ids) if (!this.has(id)) out.push(id);
    return out;
  }

  /** `vectors` holds one row of `dims` floats per id; ids that already have a row keep it (it cannot differ). */
  add(ids: number[], vectors: Float32Array): void {
    this.assertWritable();
    const fresh = ids.map((id, i) => [id, i] as const).filter(([id]) => !this.has(id));
    if (fresh.length === 0) return;
    const buf = Buffer.alloc(fresh.length * this.recordBytes);
    fresh.forEach(([id, i], j) => {
      const at = j * this.recordBytes;
      buf.writeUInt32LE(id, at);
      buf.writeUInt32LE(LIVE, at + 4);
      const halves = new Float16Array(vectors.subarray(i * this.dims, (i + 1) * this.dims));
      buf.set(new Uint8Array(halves.buffer), at + HEADER_BYTES);
    });
    writeSync(this.fd, buf, 0, buf.length, this.records * this.recordBytes);
    fresh.forEach(([id], j) => this.setSlot(id, this.records + j + 1));
    this.records += fresh.length;
    this.live += fresh.length;
  }

  /** Ids without a row are ignored. */
  remove(ids: number[]): void {
    this.assertWritable();
    const gone = ids.filter((id) => this.has(id));
    if (gone.length === 0) return;
    const buf = Buffer.alloc(gone.length * this.recordBytes);
    gone.forEach((id, j) => {
      buf.writeUInt32LE(id, j * this.recordBytes);
      buf.writeUInt32LE(REMOVED, j * this.recordBytes + 4);
    });
    writeSync(this.fd, buf, 0, buf.length, this.records * this.recordBytes);
    for (const id of gone) this.slots[id] = 0;
    this.records += gone.length;
    this.live -= gone.length;
  }

  /**
   * Cosine similarity of `query` with the rows of `ids`, NaN where an id has no row. Divided by the row's own norm,
   * as USearch does, so an image scores 1 against itself although f16 rounding moved its length.
   */
  scores(ids: number[], query: Float32Array): Float32Array {
    const out = new Float32Array(ids.length).fill(Number.NaN);
    const halves = new Uint16Array(this.row.buffer, HEADER_BYTES, this.dims);
    const float = halfToFloat();
    let queryNorm = 0;
    for (let d = 0; d < this.dims; d++) queryNorm += query[d]! * query[d]!;
    ids.forEach((id, i) => {
      const slot = this.slots[id] ?? 0;
      if (slot === 0) return;
      readSync(this.fd, this.row, 0, this.recordBytes, (slot - 1) * this.recordBytes);
      let dot = 0;
      let norm = 0;
      for (let d = 0; d < this.dims; d++) {
        const x = float[halves[d]!]!;
        dot += x * query[d]!;
        norm += x * x;
      }
      out[i] = norm > 0 && queryNorm > 0 ? dot / Math.sqrt(norm * queryNorm) : 0;
    });
    return out;
  }

  /** Makes the rows durable; rewrites the file without dead records once they outnumber the live ones. */
  commit(): void {
    if (!this.writable) return;
    if (this.records - this.live > this.live + COMPACT_SLACK) this.compact();
    fsyncSync(this.fd);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  /** Reads the valid prefix: whole records with a known flag and an id the catalog has handed out. */
  private scan(maxId: number): void {
    const size = fstatSync(this.fd).size;
    const whole = Math.floor(size / this.recordBytes);
    const chunk = Buffer.alloc(SCAN_RECORDS * this.recordBytes);
    let valid = 0;
    scan: for (let first = 0; first < whole; first += SCAN_RECORDS) {
      const n = Math.min(SCAN_RECORDS, whole - first);
      readSync(this.fd, chunk, 0, n * this.recordBytes, first * this.recordBytes);
      for (let j = 0; j < n; j++, valid++) {
        const id = chunk.readUInt32LE(j * this.recordBytes);
        const flags = chunk.readUInt32LE(j * this.recordBytes + 4);
        // Garbage (a damaged disk block) ends the file here rather than sizing the id table by a wild id.
        if ((flags !== LIVE && flags !== REMOVED) || id < 1 || id >= maxId) break scan;
        const had = this.has(id);
        if (flags === REMOVED) {
          if (had) this.live--;
          this.setSlot(id, 0);
        } else {
          if (!had) this.live++;
          this.setSlot(id, valid + 1);
        }
      }
    }
    this.records = valid;
    // A torn or damaged tail: appends go after the valid records.
    if (this.writable && size !== valid * this.recordBytes) ftruncateSync(this.fd, valid * this.recordBytes);
  }

  private compact(): void {
    const live: number[] = [];
    for (let id = 0; id < this.slots.length; id++) if (this.slots[id]! > 0) live.push(id);
    const row = Buffer.alloc(this.recordBytes);
    commitFileWith(this.path, (tmp) => {
      const out = openSync(tmp, "w");
      try {
        live.forEach((id, j) => {
          readSync(this.fd, row, 0, this.recordBytes, (this.slots[id]! - 1) * this.recordBytes);
          writeSync(out, row, 0, this.recordBytes, j * this.recordBytes);
        });
        fsyncSync(out);
      } finally {
        closeSync(out);
      }
    });
    closeSync(this.fd);
    this.fd = openReadWrite(this.path);
    live.forEach((id, j) => (this.slots[id] = j + 1));
    this.records = live.length;
  }

  private setSlot(id: number, value: number): void {
    if (id >= this.slots.length) {
      const grown = new Int32Array(Math.max(id + 1, this.slots.length * 2));
      grown.set(this.slots);
      this.slots = grown;
    }
    this.slots[id] = value;
  }

  private assertWritable(): void {
    if (!this.writable) throw new Error(`${this.path} was opened read-only`);
  }
}

let HALF_TO_FLOAT: Float32Array | null = null;

/** Every f16 bit pattern's value: indexing it is ~15x faster than reading a Float16Array in Bun 1.4. */
function halfToFloat(): Float32Array {
  if (HALF_TO_FLOAT) return HALF_TO_FLOAT;
  const bits = new Uint16Array(65536).map((_, i) => i);
  HALF_TO_FLOAT = new Float32Array(new Float16Array(bits.buffer));
  return HALF_TO_FLOAT;
}

/** Not "a+": with O_APPEND, Linux's pwrite ignores the offset. */
function openReadWrite(path: string): number {
  return openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
}
