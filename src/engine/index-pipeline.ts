// `imgd index` as one pipeline: scan -> plan -> (read, hash, decode, preprocess) x N in flight -> batch -> infer
// -> write. Decoding of the next batch overlaps inference of the current one; a bounded queue keeps memory flat.
import { readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { analyzeImage, addCounts, decodeShortSide, stagesToRun, writeStageOutcomes, type StageOutcome } from "./analysis/stage-runner.ts";
import type { AnalysisStage, StageCounts } from "./analysis/stage.ts";
import { BoundedQueue, runPool } from "./async-queue.ts";
import { decodeImage } from "./decode.ts";
import { limitHeicThreads } from "./heic-decoder.ts";
import type { BatchImageEmbedder } from "./embed.ts";
import { imohashBytes, imohashFile } from "./identity.ts";
import { failedRow, indexedRow, reusedRow } from "./image-rows.ts";
import { filesToHashForMoves, knownAfterMoves, movedFromIndex, planIndexWork, resolveMoves } from "./index-plan.ts";
import type { ResolvedModel } from "./models.ts";
import { preprocessInto } from "./preprocess.ts";
import { isRawName } from "./raw-preview.ts";
import { ProgressModel, type ProgressSnapshot } from "./progress.ts";
import { readPathList, scanRoots } from "./scan.ts";
import { ThreadedImageEmbedder } from "./threaded-image-embedder.ts";
import { THUMBNAIL_DIR } from "./thumbnail.ts";
import { StageTimings, type StageRow } from "./stage-timings.ts";
import { appendJobLog } from "./store/job-log.ts";
import { IndexDonor, type DonatedImage } from "./store/index-donor.ts";
import { IndexStore, type FileMove, type KnownFile, type NewImage } from "./store/index-store.ts";
import { copyStageRows } from "./store/merge-shards.ts";
import { ImageError, type DecodedImage, type ScannedFile } from "./types.ts";

export interface IndexOptions {
  roots: string[];
  listFile?: string;
  /** Index exactly these files (a worker's batch) instead of scanning; nothing is then reported missing. */
  files?: ScannedFile[];
  /** Remove what the catalog holds under a root that is now empty (default: keep it, and report the root). */
  allowEmptyRoots?: boolean;
  indexDir: string;
  model: ResolvedModel;
  batchSize?: number;
  threads?: number;
  /** Files read + decoded ahead of the model. */
  prefetch?: number;
  followSymlinks?: boolean;
  /** Folder names the scan passes over, beside the NAS and OS ones it always does. */
  excludeDirNames?: string[];
  maxPixels?: number;
  vectors?: { dtype?: "f32" | "f16" | "i8"; connectivity?: number; expansionAdd?: number; expansionSearch?: number };
  checkpointEveryMs?: number;
  /** A long-lived caller (a worker) passes its open store and embedder; they are then left open. */
  store?: IndexStore;
  embedder?: BatchImageEmbedder;
  /** Optional analyses (faces, objects, text) run on the same decoded pixels; the caller opens and closes them. */
  stages?: AnalysisStage[];
  /**
   * Another index (a cluster job's merged index, for a re-run's worker) whose embedding and stage rows a new file of
   * the same content (imohash) takes instead of being decoded and embedded: a moved or touched file. Opened on `store`.
   */
  donor?: IndexDonor;
  signal?: AbortSignal;
  onProgress?: (p: ProgressSnapshot) => void;
  /** Called once the plan is known, before any image is read. */
  onPlan?: (plan: { scanned: number; unchanged: number; toProcess: number; moved: number; missing: number }) => void;
}

export interface IndexReport {
  scanned: number;
  unchanged: number;
  embedded: number;
  /** New files indexed with the embedding and stage rows of an image of the same content in IndexOptions.donor. */
  reused: number;
  /** The first error the donor gave, if it failed to answer: the files it would have lent were embedded. */
  donorError: string | null;
  /** Unchanged images that only went through analysis stages they had not run yet. */
  analysed: number;
  /** What the analysis stages found in this run. */
  found: StageCounts;
  touched: number;
  moved: number;
  removed: number;
  failed: number;
  /** Files that failed while they were being changed, replaced or removed: left as they were, for the next run. */
  changing: number;
  /** Indexed files that could not be read this time (permissions, I/O): kept as indexed, tried again next run. */
  unreadableKept: { path: string; error: string }[];
  scanSkipped: { path: string; reason: string }[];
  interrupted: boolean;
  wallMs: number;
  imagesPerSecond: number;
  stages: StageRow[];
  vectorsRebuilt: boolean;
  /** Roots that held no image while the catalog has files under them: those files were kept. */
  emptyRoots: { root: string; catalogued: number }[];
  /** The most decoded images (and their pixels' and tensors' bytes) the run held at once: what bounds its memory. */
  peakDecoded: { images: number; bytes: number };
}

/**
 * `image.data` and `pixels` are dropped (see DecodedHold) once the stages and the batch tensor have them: a camera
 * photo decoded for the stages is ~2.3 MB (~6.5 MB from a HEIC), and a batch's worth of them, waiting for their write,
 * came to hundreds of MB.
 */
type Prepared =
  | { kind: "embed"; file: ScannedFile; hash: string; image: DecodedImage; pixels: Float32Array | null; stages: AnalysisStage[] }
  /** A known image (same content) that only needs analysis stages; `touch` also updates its size and mtime. */
  | { kind: "analyze"; file: ScannedFile; id: number; image: DecodedImage; stages: AnalysisStage[]; touch: boolean }
  | { kind: "failed"; file: ScannedFile; hash: string | null; error: ImageError }
  /** A new file whose content the donor index has: its rows are copied from there. */
  | { kind: "reuse"; file: ScannedFile; donated: DonatedImage }
  | { kind: "touch"; file: ScannedFile; id: number }
  | { kind: "move"; file: ScannedFile; id: number }
  /** Could not be indexed, and has changed or gone since the scan: nothing is written, the next run sees it anew. */
  | { kind: "changing"; file: ScannedFile }
  /** An indexed file that could not be read now: its row stays as it is, and the next run reads it again. */
  | { kind: "unreadable"; file: ScannedFile; error: ImageError };

/**
 * Files up to this size are read whole, once, for both the hash and the decode (camera RAW files excepted: see
 * prepare). Camera JPEGs are far smaller; above it, holding a file (times the files in flight) would cost more memory
 * than the decode itself.
 */
export const WHOLE_READ_MAX_BYTES = 64 * 1024 * 1024;

/** Counts the decoded images whose pixels the run holds, and keeps the most it held at once. */
class DecodedHold {
  images = 0;
  bytes = 0;
  peak = { images: 0, bytes: 0 };

  hold(image: DecodedImage, pixels: Float32Array | null): void {
    this.images++;
    this.bytes += image.data.byteLength + (pixels?.byteLength ?? 0);
    if (this.images > this.peak.images) this.peak.images = this.images;
    if (this.bytes > this.peak.bytes) this.peak.bytes = this.bytes;
  }

  /** The image's pixels, once every stage has seen them; its size, EXIF and format stay for its row. */
  releaseImage(p: { image: DecodedImage }): void {
    if (p.image.data.byteLength === 0) return;
    this.bytes -= p.image.data.byteLength;
    p.image = { ...p.image, data: NO_PIXELS };
    this.images--;
  }

  /** The CLIP tensor, once it is copied into its batch. */
  releasePixels(p: { pixels: Float32Array | null }): void {
    if (!p.pixels) return;
    this.bytes -= p.pixels.byteLength;
    p.pixels = null;
  }
}

const NO_PIXELS = new Uint8Array(0);

/** Files hashed at once for the move plan: as the scan's stats, enough to keep a disk's or a NAS's queue full. */
const MOVE_HASH_CONCURRENCY = 16;

export async function runIndex(opts: IndexOptions): Promise<IndexReport> {
  const t0 = performance.now();
  const timings = new StageTimings();
  const batchSize = opts.batchSize ?? 32;
  const threads = opts.threads ?? 2;
  // A run held to fewer cores (--threads, a shared host's worker) decodes HEICs on no more threads than that.
  limitHeicThreads(threads);
  const spec = opts.model.manifest.preprocess;
  const tensorSize = 3 * spec.size * spec.size;
  const stages = opts.stages ?? [];
  const decodeSide = decodeShortSide(spec.size, stages);

  const scan = await timings.time("scan", async () =>
    opts.files
      ? { files: opts.files, skipped: [], scope: undefined }
      : opts.listFile
        ? readPathList(opts.listFile)
        : scanRoots(opts.roots, {
            followSymlinks: opts.followSymlinks,
            exclude: [join(opts.indexDir, THUMBNAIL_DIR)],
            excludeNames: opts.excludeDirNames,
          }),
  );
  if (opts.donor && opts.donor.store !== opts.store) throw new Error("runIndex: a donor is read through the store it was opened on; pass that store");
  const ownStore = !opts.store;
  const store = opts.store ?? await timings.time("open", () => IndexStore.open(opts.indexDir, {
    model: {
      name: opts.model.manifest.name,
      dims: opts.model.manifest.dims,
      preprocess: spec,
      tokenizer: opts.model.manifest.tokenizer,
    },
    vectors: opts.vectors,
  }));
  // The image tower's worker thread keeps the process alive: a run that fails must close it too, or it hangs.
  let ownedEmbedder: ThreadedImageEmbedder | null = null;
  try {
    // An explicit batch only needs its own rows; a full scan needs every row to find moves and deletions.
    const planStarted = performance.now();
    const knownBefore = await store.knownFiles(opts.files ? opts.files.map((f) => f.path) : undefined);
    await store.prepareStages(stages);
    const runs = stages.length > 0 ? await store.analysisRuns() : new Map<number, Map<string, string>>();
    const pending = (id: number) => stagesToRun(stages, runs.get(id));
    const plan = planIndexWork(scan.files, knownBefore, {
      scope: scan.scope ?? null,
      allowEmptyRoots: opts.allowEmptyRoots,
      // Asked of every unchanged file: without stages the answer is no, without a filter per file.
      needsAnalysis: stages.length > 0 ? (id) => pending(id).length > 0 : undefined,
    });
    timings.add("plan", performance.now() - planStarted);
    // Renames (swaps and cycles among known paths too) are settled before any pixel is read, in one transaction:
    // a path that now holds another known photo would otherwise be re-embedded under a new id, losing its rows.
    const hashes = new Map<string, string>();
    await timings.time("hash", () =>
      // Every touched file is hashed here (a `chmod -R`: all of them), a few reads each: one at a time, a NAS's
      // latency per read would add up to hours.
      runPool(filesToHashForMoves(plan, knownBefore), MOVE_HASH_CONCURRENCY, async (file) => {
        // One that cannot be hashed now is read (and its failure recorded) by the pipeline.
        const hash = await imohashFile(file.path, { size: file.size }).catch(() => null);
        if (hash !== null) hashes.set(file.path, hash);
      }),
    );
    const movePlan = resolveMoves(plan, knownBefore, hashes);
    await timings.time("write", async () => {
      await store.movePaths(movePlan.moves.map(({ id, file }) => ({ id, ...file })), movePlan.displaced);
      await store.setCtimes(plan.adoptCtimes);
    });
    const planResumed = performance.now();
    const known = knownAfterMoves(knownBefore, movePlan);
    const movedTo = new Map(movePlan.moves.map(({ id, file }) => [file.path, id]));
    const claimedMoves = new Set(movePlan.moves.map((m) => m.id));
    // Files catalogued outside this scan's scope: one whose content turns up here is a move only if it is gone. Files
    // that failed count too: nothing else would ever drop the row of one whose folder was moved out of every scope.
    // Built on the first new file that asks: a run with none (the nightly re-run) never indexes the whole catalog.
    let elsewhere: Map<string, KnownFile[]> | undefined;
    const elsewhereByHash = () => {
      if (elsewhere) return elsewhere;
      const missingIds = new Set(plan.missing.map((m) => m.id));
      return (elsewhere = movedFromIndex(opts.files ? [] : [...known.values()].filter((k) => !missingIds.has(k.id)), { failedToo: true }));
    };
    const work = [
      ...plan.candidates.flatMap((file) => {
        const id = movedTo.get(file.path);
        if (id === undefined) return [{ file, analyzeId: null as number | null }];
        // A moved image that an enabled stage has not seen yet is analysed, as an unchanged one would be.
        return pending(id).length > 0 ? [{ file, analyzeId: id as number | null }] : [];
      }),
      ...plan.reanalyze.map(({ file, id }) => ({ file, analyzeId: id as number | null })),
    ];
    timings.add("plan", performance.now() - planResumed);
    opts.onPlan?.({
      scanned: scan.files.length,
      unchanged: plan.unchanged,
      toProcess: work.length,
      moved: movePlan.moves.length,
      missing: plan.missing.filter((m) => !claimedMoves.has(m.id)).length + movePlan.displaced.length,
    });

    const progress = new ProgressModel(work.length);
    const ownEmbedder = !opts.embedder && work.some((w) => w.analyzeId === null);
    if (ownEmbedder) ownedEmbedder = await ThreadedImageEmbedder.open(opts.model, { threads });
    const embedder = opts.embedder ?? ownedEmbedder;
    const prefetch = Math.max(1, opts.prefetch ?? threads + 2);
    // An image for the stages is decoded at their size (640 px and up) and analysed as it leaves the queue, which
    // needs to cover no more than the decoders' jitter; without stages an item is a 224 px tensor, and two batches
    // of them keep the model fed.
    const queue = new BoundedQueue<Prepared>(stages.length > 0 ? Math.max(2 * prefetch, 8) : Math.max(batchSize * 2, 8));
    const held = new DecodedHold();
    let next = 0;

    /**
     * The file catalogued outside this scan's scope that `path` (content `hash`) was moved from, claimed so no other
     * path takes it too. Moves within the scope were settled before the run.
     */
    const movedHere = async (hash: string, path: string): Promise<KnownFile | undefined> => {
      for (const m of elsewhereByHash().get(hash) ?? []) {
        if (m.path === path || claimedMoves.has(m.id)) continue;
        // Claimed before the check, which yields: two copies of one photo must not both take it.
        claimedMoves.add(m.id);
        if (!(await pathExists(m.path))) return m;
        claimedMoves.delete(m.id);
      }
      return undefined;
    };

    let donorError: string | null = null;
    const prepare = async (file: ScannedFile, analyzeId: number | null): Promise<Prepared> => {
      let hash: string | null = null;
      try {
        // Hashed from samples for the moves above; the same content as its catalogued self (a touch, a chmod: only
        // the mtime or ctime changed) needs no read of the whole file, if it has not changed again since the scan.
        const prior = known.get(file.path);
        const sameContent = prior?.status === "indexed" && hashes.get(file.path) === prior.imohash;
        if (analyzeId === null && sameContent && pending(prior.id).length === 0 && !(await changedSince(file))) {
          return { kind: "touch", file, id: prior.id };
        }
        // Hashed from samples first: a file the donor has (moved, touched) is never read whole.
        if (analyzeId === null && !prior && opts.donor) {
          hash = await timings.time("hash", () => imohashFile(file.path, { size: file.size }));
          // The donor only saves work: its failing (an I/O error on its catalog) is no fault of this file's, which is
          // embedded; a failed row would stand for a good photo until the file changed.
          const donated = await opts.donor.find(hash).catch((err: unknown) => {
            donorError ??= err instanceof Error ? err.message : String(err);
            return null;
          });
          if (donated) return { kind: "reuse", file, donated };
        }
        // A file too large to hold (a film scan, a video called .jpg) is sampled for its hash and decoded from disk; so
        // is a camera RAW, whose decode reads only its head and JPEG preview, a few MB of a file mostly sensor data.
        const wholeRead = file.size <= WHOLE_READ_MAX_BYTES && !isRawName(file.path);
        const bytes = wholeRead ? await timings.time("read", () => readFile(file.path)) : null;
        const decode = () =>
          timings.time("decode", () => decodeImage(bytes ?? file.path, { name: file.path, targetShortSide: decodeSide, maxPixels: opts.maxPixels }));
        if (analyzeId !== null) {
          const image = await decode();
          held.hold(image, null);
          return { kind: "analyze", file, id: analyzeId, image, stages: pending(analyzeId), touch: false };
        }
        hash = await timings.time("hash", () => (bytes ? imohashBytes(bytes) : imohashFile(file.path, { size: file.size })));
        if (prior && prior.status === "indexed" && prior.imohash === hash) {
          const missing = pending(prior.id);
          if (missing.length === 0) return { kind: "touch", file, id: prior.id };
          const image = await decode();
          held.hold(image, null);
          return { kind: "analyze", file, id: prior.id, image, stages: missing, touch: true };
        }
        const moved = prior ? undefined : await movedHere(hash, file.path);
        if (moved) return { kind: "move", file, id: moved.id };
        const image = await decode();
        const pixels = new Float32Array(tensorSize);
        await timings.time("preprocess", () => preprocessInto(image, spec, pixels, 0));
        const prepared: Prepared = { kind: "embed", file, hash, image, pixels, stages };
        held.hold(image, pixels);
        if (stages.length === 0) held.releaseImage(prepared);
        return prepared;
      } catch (err) {
        const error =
          err instanceof ImageError
            ? err
            : new ImageError("unreadable", err instanceof Error ? err.message : String(err));
        // A file being written (a copy in progress, an editor saving in place) or removed since the scan is left to
        // the next run: a failure recorded now would replace its indexed row, and with it its faces and persons.
        // A worker's batch records it: its coordinator counts on a row for every file it leased.
        if (!opts.files && (await changedSince(file))) return { kind: "changing", file };
        // Not being able to read a file (a chmod, an I/O error) says nothing about its content: a failed row would
        // replace the indexed one, and with it its vector, faces and persons, until it is readable again.
        if (!opts.files && error.reason === "unreadable" && known.get(file.path)?.status === "indexed") {
          return { kind: "unreadable", file, error };
        }
        return { kind: "failed", file, hash, error };
      }
    };

    const producer = async () => {
      while (!opts.signal?.aborted) {
        const i = next++;
        if (i >= work.length) return;
        await queue.put(await prepare(work[i]!.file, work[i]!.analyzeId));
      }
    };
    const producers = Array.from({ length: prefetch }, producer);
    const allProduced = Promise.all(producers).then(() => queue.close());

    const counts = { embed: 0, reuse: 0, analyze: 0, failed: 0, touch: 0, move: movePlan.moves.length, changing: 0, unreadable: 0 };
    const unreadableKept: IndexReport["unreadableKept"] = [];
    const found: StageCounts = {};
    let lastCheckpoint = performance.now();
    let lastCheckpointMs = 0;
    // Touches (and moves from outside the scope) wait for the next checkpoint or the end of the run: each movePaths
    // is a transaction of ~7 ms however few rows it has (bench/catalog-touch.ts), 20 s of a 100K-photo run after a
    // `chmod -R` if written per batch. One lost to a crash is only hashed again by the next run.
    const pendingTouches: FileMove[] = [];
    const writeTouches = async () => {
      if (pendingTouches.length > 0) await store.movePaths(pendingTouches.splice(0));
    };

    const write = async (items: Prepared[], vectors: Float32Array, analysed: Map<Prepared, StageOutcome[]>) => {
      const embedded = items.flatMap((p) => (p.kind === "embed" ? [p] : []));
      const reused = items.flatMap((p) => (p.kind === "reuse" ? [p] : []));
      // Failed rows carry no vector; the store pairs vectors with the 'indexed' rows in order, so those come first.
      const ordered: NewImage[] = [
        ...embedded.map((p) => indexedRow(p.file, p.hash, p.image)),
        ...reused.map((p) => reusedRow(p.file, p.donated.row)),
        ...items.flatMap((p) => (p.kind === "failed" ? [failedRow(p.file, p.hash, p.error)] : [])),
      ];
      const outcomesOf = (p: Prepared) => analysed.get(p) ?? [];
      if (ordered.length > 0) {
        const all = new Float32Array(vectors.length + reused.length * store.dims);
        all.set(vectors);
        reused.forEach((p, i) => all.set(p.donated.embedding, vectors.length + i * store.dims));
        const ids = await store.addBatch(ordered, all, (conn, ids) =>
          writeStageOutcomes(conn, embedded.map((p, i) => ({ imageId: ids[i]!, outcomes: outcomesOf(p) }))),
        );
        // A crash before these are written leaves the image without its stage runs: the batch, not committed yet, is
        // redone, and the stages run on it then.
        const pairs = reused.map((p, i): [number, number] => [p.donated.id, ids[embedded.length + i]!]);
        if (pairs.length > 0 && opts.donor) {
          await store.writeRows((conn) => copyStageRows(conn, pairs, IndexDonor.alias));
        }
      }
      const reanalysed = items.flatMap((p) => (p.kind === "analyze" ? [p] : []));
      if (reanalysed.length > 0) {
        await store.writeRows((conn) =>
          writeStageOutcomes(conn, reanalysed.map((p) => ({ imageId: p.id, outcomes: outcomesOf(p) }))),
        );
      }
      for (const outcomes of analysed.values()) addCounts(found, outcomes);
      const touches = items.flatMap((p) =>
        p.kind === "touch" || p.kind === "move" || (p.kind === "analyze" && p.touch) ? [p] : [],
      );
      pendingTouches.push(...touches.map((p) => ({ id: p.id, ...p.file })));
      // Saving the vectors costs O(index size): keep it under ~5 % of the run however large the index grows.
      if (performance.now() - lastCheckpoint > Math.max(opts.checkpointEveryMs ?? 15_000, 20 * lastCheckpointMs)) {
        const c0 = performance.now();
        await writeTouches();
        await store.checkpoint();
        lastCheckpoint = performance.now();
        lastCheckpointMs = lastCheckpoint - c0;
      }
      for (const p of items) counts[p.kind]++;
      for (const p of items) if (p.kind === "unreadable") unreadableKept.push({ path: p.file.path, error: p.error.message });
      progress.advance(items.length, items.filter((p) => p.kind === "failed").length);
      opts.onProgress?.(progress.snapshot());
    };

    // Batch N is inferred on the tower's thread while batch N+1 is taken from the queue and run through the stages on
    // this one, and written while N+1 is inferred; writes stay in order. Each image goes through the stages as it is
    // taken, so only the queue's few images are held at the stages' size, not two batches' worth.
    let writing: Promise<void> = Promise.resolve();
    let inTower: { items: Prepared[]; analysed: Map<Prepared, StageOutcome[]>; vectors: Promise<Float32Array> } | null = null;
    const writeWhenInferred = async (b: NonNullable<typeof inTower>) => {
      const vectors = await b.vectors;
      await writing;
      writing = timings.time("write", () => write(b.items, vectors, b.analysed));
    };
    const analyse = async (p: Prepared, analysed: Map<Prepared, StageOutcome[]>) => {
      if (p.kind !== "embed" && p.kind !== "analyze") return;
      if (p.stages.length > 0) analysed.set(p, await analyzeImage(p.stages, p.image, timings));
      held.releaseImage(p);
    };
    for (;;) {
      const items: Prepared[] = [];
      const analysed = new Map<Prepared, StageOutcome[]>();
      while (items.length < batchSize) {
        const p = await queue.take();
        if (p === undefined) break;
        await analyse(p, analysed);
        items.push(p);
      }
      if (items.length === 0) break;

      const toEmbed = items.flatMap((p) => (p.kind === "embed" ? [p] : []));
      const batch = new Float32Array(toEmbed.length * tensorSize);
      toEmbed.forEach((p, i) => {
        batch.set(p.pixels!, i * tensorSize);
        held.releasePixels(p);
      });
      // One batch in the tower at a time: the previous one's vectors are in before this one goes.
      if (inTower) await writeWhenInferred(inTower);
      const vectors =
        toEmbed.length > 0
          ? timings.time("infer", () => embedder!.embed(batch, toEmbed.length))
          : Promise.resolve(new Float32Array(0));
      // Awaited once the next batch is ready; a failure meanwhile must not count as unhandled.
      vectors.catch(() => {});
      inTower = { items, analysed, vectors };
    }
    if (inTower) await writeWhenInferred(inTower);
    await writing;
    await allProduced;

    const interrupted = opts.signal?.aborted === true && next < work.length;
    // Deletions are only safe once the whole tree was seen and every move was claimed.
    const removedIds = interrupted ? [] : plan.missing.filter((m) => !claimedMoves.has(m.id)).map((m) => m.id);
    const removed = removedIds.length + movePlan.displaced.length;
    await timings.time("write", async () => {
      await writeTouches();
      if (removedIds.length > 0) await store.removeIds(removedIds);
      await store.checkpoint();
    });
    await ownedEmbedder?.close();
    ownedEmbedder = null;

    const wallMs = performance.now() - t0;
    const report: IndexReport = {
      scanned: scan.files.length,
      unchanged: plan.unchanged,
      embedded: counts.embed,
      reused: counts.reuse,
      donorError,
      analysed: counts.analyze,
      found,
      touched: counts.touch,
      moved: counts.move,
      removed,
      failed: counts.failed,
      changing: counts.changing,
      unreadableKept,
      scanSkipped: scan.skipped,
      interrupted,
      wallMs,
      imagesPerSecond: counts.embed > 0 ? (counts.embed * 1000) / wallMs : 0,
      stages: timings.rows(counts.embed + counts.analyze + counts.failed, wallMs),
      vectorsRebuilt: store.rebuilt,
      emptyRoots: plan.emptyRoots,
      peakDecoded: held.peak,
    };
    appendJobLog(opts.indexDir, {
      job: "index",
      at: new Date().toISOString(),
      roots: opts.roots,
      model: opts.model.manifest.name,
      batchSize,
      threads,
      ...report,
      scanSkipped: report.scanSkipped.length,
      unreadableKept: report.unreadableKept.length,
    });
    return report;
  } finally {
    await ownedEmbedder?.close();
    if (ownStore) await store.close();
  }
}

/** Whether `file` is gone or has another size, mtime or ctime than the scan saw. */
async function changedSince(file: ScannedFile): Promise<boolean> {
  try {
    const now = await stat(file.path);
    return now.size !== file.size || now.mtimeMs !== file.mtimeMs || (file.ctimeMs !== undefined && now.ctimeMs !== file.ctimeMs);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT" || code === "ENOTDIR";
  }
}

/** Whether `path` exists; a file the process cannot stat counts as there, so it is never taken for moved. */
async function pathExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code !== "ENOENT" && (error as NodeJS.ErrnoException).code !== "ENOTDIR";
  }
}
