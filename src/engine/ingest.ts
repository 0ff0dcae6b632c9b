// Adding a handful of images to a live index (the server's POST /api/ingest), as opposed to `imgd index`, which
// walks whole folders: hash -> skip exact duplicates -> decode + preprocess -> one embed batch -> store.
// Uploaded bytes are kept under `<index>/uploads/` (see upload-files.ts) so the catalog path points at a real file.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { analyzeImage, addCounts, decodeShortSide, writeStageOutcomes, type StageOutcome } from "./analysis/stage-runner.ts";
import type { AnalysisStage, StageCounts } from "./analysis/stage.ts";
import { decodeImage } from "./decode.ts";
import { defaultNearThreshold, nearDuplicatesOf } from "./duplicates.ts";
import type { BatchImageEmbedder } from "./embed.ts";
import { imohashBytes, sha256File } from "./identity.ts";
import { indexedRow } from "./image-rows.ts";
import { commitFile } from "./store/atomic-file.ts";
import { preprocessInto } from "./preprocess.ts";
import { StageTimings } from "./stage-timings.ts";
import type { IndexStore, NewImage } from "./store/index-store.ts";
import { ImageError, type DecodedImage, type PreprocessSpec } from "./types.ts";
import { uploadFileName } from "./upload-files.ts";

export interface IngestItem {
  /** Shown in errors: the upload's file name or the path. */
  name: string;
  bytes: Uint8Array;
  /** A file already on this machine; without it the bytes are an upload and are stored under `uploadsDir`. */
  path?: string;
  mtimeMs?: number;
}

export interface IngestReport {
  total: number;
  processed: number;
  duplicates: number;
  /** Newly indexed images that an image already in the index is a near duplicate of. */
  nearDuplicates: number;
  errors: { name: string; reason: string; error: string }[];
  /** Catalog ids of the newly indexed images, in input order. */
  ids: number[];
  /** Each exact duplicate and the indexed image holding its content (one indexed before, or by this request). */
  duplicateOf: { name: string; id: number }[];
  /** What the analysis stages found in the new images (faces, vehicles, people, text lines). */
  found: StageCounts;
  stages: Record<string, number>;
  wallMs: number;
}

/** Decodes in flight at once: libvips already uses several threads per image. */
const DECODE_CONCURRENCY = 4;

export const INGEST_STAGES = ["hash", "decode", "preprocess", "infer", "write"] as const;

export interface IngestorOptions {
  store: IndexStore;
  embedder: BatchImageEmbedder;
  uploadsDir: string;
  maxPixels?: number;
  batchSize?: number;
  /** Each batch is durable in the catalog at once; the vectors file is saved at most this often (and on flush). */
  checkpointEveryMs?: number;
  /** Cosine similarity at which an existing image counts as a near duplicate; defaults per model. */
  nearThreshold?: number;
  /** Analysis stages run on every new image (the caller opens and closes them). */
  stages?: AnalysisStage[];
}

export class Ingestor {
  private stageTablesReady = false;
  private dirty = false;
  private lastCheckpoint = performance.now();
  // Batches are applied one at a time: the duplicate check and the insert must not interleave.
  private tail: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: IngestorOptions) {}

  ingest(items: IngestItem[]): Promise<IngestReport> {
    const run = this.tail.then(() => this.ingestNow(items));
    this.tail = run.catch(() => {});
    return run;
  }

  /** Saves the vectors file and manifest if anything was added since the last save (after any running ingest). */
  flush(): Promise<void> {
    const run = this.tail.then(() => this.flushNow());
    this.tail = run.catch(() => {});
    return run;
  }

  private async flushNow(): Promise<void> {
    if (!this.dirty) return;
    this.dirty = false;
    this.lastCheckpoint = performance.now();
    await this.opts.store.checkpoint();
  }

  private async ingestNow(items: IngestItem[]): Promise<IngestReport> {
    const t0 = performance.now();
    const timings = new StageTimings(INGEST_STAGES);
    const { store, embedder } = this.opts;
    const spec = embedder.spec;
    const report: IngestReport = {
      total: items.length,
      processed: 0,
      duplicates: 0,
      nearDuplicates: 0,
      errors: [],
      ids: [],
      duplicateOf: [],
      found: {},
      stages: {},
      wallMs: 0,
    };
    const stages = this.opts.stages ?? [];
    if (stages.length > 0 && !this.stageTablesReady) {
      await store.prepareStages(stages);
      this.stageTablesReady = true;
    }

    const hashes: string[] = [];
    for (const item of items) hashes.push(await timings.time("hash", () => imohashBytes(item.bytes)));
    // Asked of the catalog per request: a set of every indexed hash held ~10 MB at 100K images, and reading it
    // ~50 MB more.
    const known = await timings.time("hash", () => store.indexedHashes([...new Set(hashes)]));
    const contents = new SameHashContents(store, known);
    const fresh: { item: IngestItem; hash: string }[] = [];
    const copies: { item: IngestItem; of: ContentOwner }[] = [];
    for (const [i, item] of items.entries()) {
      const hash = hashes[i]!;
      const of = await timings.time("hash", () => contents.ownerOf(hash, item));
      if (of === undefined) fresh.push({ item, hash });
      else copies.push({ item, of });
    }
    const newIds = new Map<IngestItem, number>();
    const failures = new Map<IngestItem, IngestReport["errors"][number]>();

    // One model batch at a time, so a request of 256 large images never holds more than one batch decoded.
    const batchSize = this.opts.batchSize ?? 32;
    const tensorSize = 3 * spec.size * spec.size;
    for (let start = 0; start < fresh.length; start += batchSize) {
      const decoded = await mapLimited(fresh.slice(start, start + batchSize), DECODE_CONCURRENCY, async ({ item, hash }) => {
        try {
          const image = await timings.time("decode", () =>
            decodeImage(item.bytes, { name: item.path ?? item.name, targetShortSide: decodeShortSide(spec.size, stages), maxPixels: this.opts.maxPixels }),
          );
          return { item, hash, image, failure: null };
        } catch (err) {
          const e = err instanceof ImageError ? err : new ImageError("unreadable", String(err));
          return { item, hash, image: null, failure: { name: item.name, reason: e.reason, error: e.message.replace(/^image: /, `${item.name}: `) } };
        }
      });
      // Reported in upload order, whichever decode finished first.
      for (const d of decoded) {
        if (!d.failure) continue;
        report.errors.push(d.failure);
        failures.set(d.item, d.failure);
      }
      const batch = decoded.flatMap((d) => (d.image ? [{ item: d.item, hash: d.hash, image: d.image }] : []));
      if (batch.length === 0) continue;
      const tensor = new Float32Array(batch.length * tensorSize);
      await timings.time("preprocess", () => batch.forEach((p, i) => preprocessInto(p.image, spec, tensor, i * tensorSize)));
      const inferring = timings.time("infer", () => embedder.embed(tensor, batch.length));
      const outcomes: StageOutcome[][] = [];
      for (const p of batch) outcomes.push(stages.length > 0 ? await analyzeImage(stages, p.image, timings) : []);
      const vectors = await inferring;
      const near = this.opts.nearThreshold ?? defaultNearThreshold(store.manifest.model.name);
      await timings.time("near", async () => {
        for (let i = 0; i < batch.length; i++) {
          const vector = vectors.subarray(i * store.dims, (i + 1) * store.dims);
          if ((await nearDuplicatesOf(store, vector, near, 1)).length > 0) report.nearDuplicates++;
        }
      });
      await timings.time("write", async () => {
        const rows = batch.map((p) => this.row(p.item, p.hash, p.image));
        const ids = await store.addBatch(rows, vectors, (conn, newIds) =>
          writeStageOutcomes(conn, newIds.map((imageId, i) => ({ imageId, outcomes: outcomes[i]! }))),
        );
        report.ids.push(...ids);
        batch.forEach((p, i) => newIds.set(p.item, ids[i]!));
        for (const o of outcomes) addCounts(report.found, o);
      });
      report.processed += batch.length;
    }
    this.settleCopies(copies, newIds, failures, report);

    if (report.processed > 0) {
      this.dirty = true;
      if (performance.now() - this.lastCheckpoint > (this.opts.checkpointEveryMs ?? 15_000)) await timings.time("write", () => this.flushNow());
    }
    report.wallMs = performance.now() - t0;
    report.stages = Object.fromEntries(timings.rows(items.length, report.wallMs).map((r) => [r.stage, r.totalMs]));
    return report;
  }

  /** A copy of an earlier item of this request shares its fate: a duplicate of its new image, or its error. */
  private settleCopies(
    copies: { item: IngestItem; of: ContentOwner }[],
    newIds: Map<IngestItem, number>,
    failures: Map<IngestItem, IngestReport["errors"][number]>,
    report: IngestReport,
  ) {
    for (const { item, of } of copies) {
      const id = typeof of === "number" ? of : newIds.get(of);
      if (id !== undefined) {
        report.duplicates++;
        report.duplicateOf.push({ name: item.name, id });
        continue;
      }
      const failed = failures.get(of as IngestItem);
      report.errors.push({
        name: item.name,
        reason: failed?.reason ?? "unreadable",
        error: `${item.name}: the same content as ${(of as IngestItem).name}, which could not be indexed${failed ? ` (${failed.error})` : ""}`,
      });
    }
  }

  private row(item: IngestItem, hash: string, image: DecodedImage): NewImage {
    const path = item.path ?? this.storeUpload(item.bytes, hash, image.format);
    return indexedRow({ path, size: item.bytes.byteLength, mtimeMs: item.mtimeMs ?? Date.now() }, hash, image);
  }

  private storeUpload(bytes: Uint8Array, hash: string, format: string): string {
    mkdirSync(this.opts.uploadsDir, { recursive: true });
    const ext = uploadExtension(format, bytes);
    let path = join(this.opts.uploadsDir, uploadFileName(hash, ext));
    // Another content of the same imohash (a collision) keeps its file: this one is named by its sha256 too.
    if (existsSync(path) && !Buffer.from(bytes).equals(readFileSync(path))) {
      path = join(this.opts.uploadsDir, uploadFileName(hash, ext, sha256Hex(bytes)));
    }
    commitFile(path, bytes);
    return path;
  }
}

/**
 * Which contents an imohash already stands for: the indexed files holding it and the new items of this request.
 * imohash reads only three 16 KiB samples, so two different photos of one size can share it; a copy is confirmed by
 * the sha256 of the whole content, and files are read only for hashes that some item shares.
 */
class SameHashContents {
  /** By imohash, then by sha256: who holds that content. */
  private readonly owners = new Map<string, Map<string, ContentOwner>>();
  /** Items of this request not hashed in full yet: only needed if a later item shares their imohash. */
  private readonly unhashed = new Map<string, IngestItem[]>();

  constructor(
    private readonly store: IndexStore,
    private readonly indexed: Set<string>,
  ) {}

  /** What already holds `item`'s content, if anything; if nothing, `item` is remembered as holding it. */
  async ownerOf(hash: string, item: IngestItem): Promise<ContentOwner | undefined> {
    if (!this.indexed.has(hash) && !this.owners.has(hash) && !this.unhashed.has(hash)) {
      this.unhashed.set(hash, [item]);
      return undefined;
    }
    const owners = await this.contentsOf(hash);
    const sha = sha256Hex(item.bytes);
    const owner = owners.get(sha);
    if (owner === undefined) owners.set(sha, item);
    return owner;
  }

  private async contentsOf(hash: string): Promise<Map<string, ContentOwner>> {
    let owners = this.owners.get(hash);
    if (!owners) {
      owners = new Map();
      this.owners.set(hash, owners);
      if (this.indexed.has(hash)) {
        const rows = await this.store.read("SELECT id, path FROM images WHERE status = 'indexed' AND imohash = $1 ORDER BY id", [hash]);
        for (const [id, path] of rows) {
          // A file that cannot be read (moved or deleted since it was indexed) confirms nothing: the item is indexed.
          const sha = await sha256File(path as string).catch(() => "");
          if (sha && !owners.has(sha)) owners.set(sha, Number(id));
        }
      }
    }
    for (const item of this.unhashed.get(hash) ?? []) owners.set(sha256Hex(item.bytes), item);
    this.unhashed.delete(hash);
    return owners;
  }
}

/** An image already in the catalog (its id), or an earlier item of the same request. */
type ContentOwner = number | IngestItem;

/**
 * The extension an upload is stored under, which is also the type /file serves it as. sharp calls AVIF and HEIC
 * both "heif"; the ftyp box's brands tell them apart (an AVIF served as image/heif is not shown by browsers).
 */
function uploadExtension(format: string, bytes: Uint8Array): string {
  if (format === "jpeg") return "jpg";
  if (format === "heif") {
    const ftyp = new TextDecoder("latin1").decode(bytes.subarray(4, 32));
    return ftyp.startsWith("ftyp") && /avi[fs]/.test(ftyp) ? "avif" : "heic";
  }
  return format.replace(/[^a-z0-9]/gi, "") || "bin";
}

function sha256Hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

async function mapLimited<T, R>(items: T[], limit: number, work: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await work(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
