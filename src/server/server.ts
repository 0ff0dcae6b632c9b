// Opens the engine (index, hit metadata in memory, text tower on its own thread, caches), binds the Hono app to
// Bun.serve, and warms the text tower so /ready only turns true when a query will be fast. The image tower opens on
// the first image query or ingest: a server that answers text queries never pays its memory.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { availableParallelism } from "node:os";
import { ImageEmbedder, TextEmbedder, type BatchImageEmbedder } from "../engine/embed.ts";
import { limitHeicThreads } from "../engine/heic-decoder.ts";
import { DEFAULT_MEMORY_TARGET_BYTES, governMemory, type MemoryGovernor } from "../engine/memory-governor.ts";
import { trimFreedMemory } from "../engine/native-memory.ts";
import type { SessionOptions } from "../engine/onnx-session.ts";
import { ThreadedImageEmbedder } from "../engine/threaded-image-embedder.ts";
import {
  chooseStageModels,
  closeStages,
  describeStageModels,
  findStageModels,
  openStages,
  type StageSpec,
} from "../engine/analysis/open-stages.ts";
import { Ingestor } from "../engine/ingest.ts";
import { removeUncommittedUploads } from "../engine/upload-files.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../engine/models.ts";
import { QueryEmbeddings } from "../engine/query-embeddings.ts";
import { IndexStore } from "../engine/store/index-store.ts";
import { MetadataCache } from "../engine/store/metadata-cache.ts";
import { TextBatcher, type TextEmbedding } from "../engine/text-batcher.ts";
import { ThreadedTextEmbedder } from "../engine/threaded-text-embedder.ts";
import { THUMBNAIL_DIR, ThumbnailCache } from "../engine/thumbnail.ts";
import { publishServerAddress } from "./server-address.ts";
import { DEFAULT_LIMITS, type AppDeps, type Limits } from "./app-deps.ts";
import { createApp } from "./app.ts";
import { ConcurrencyGate } from "./concurrency-gate.ts";
import { FileRoots, unusableRoot } from "./file-roots.ts";
import { JsonLog } from "./json-log.ts";
import { allowedHostNames } from "./middleware/host-check.ts";
import { DEFAULT_IMAGE_TOWER_IDLE_MS, IdleClosingTower } from "./idle-closing-tower.ts";
import { OnDemand } from "./on-demand.ts";

export interface ServeOptions {
  indexDir: string;
  /** Analysis stages run on ingested images (opened with the ingestor, on the first ingest). */
  stages?: StageSpec[];
  modelsDir?: string;
  port?: number;
  /** The address to listen on; bound to loopback, the server answers only loopback's names and `allowedHosts`. */
  host?: string;
  /** Further Host names to answer (--allowed-host): how users reach it through a proxy or a name of their own. */
  allowedHosts?: string[];
  token?: string;
  cors?: string;
  /** Queries running at once; a further quarter of this may wait (less when the latency target says so), the rest get 429. */
  maxConcurrency?: number;
  maxQueue?: number;
  maxQueueWaitMs?: number;
  /** Latency admitted queries should stay within; arrivals that would wait past it get 429 at once. 0: off. */
  targetLatencyMs?: number;
  /** Open the image tower at start instead of on the first image query or ingest. */
  eagerImageTower?: boolean;
  /** Close the image tower after this long without an image query or ingest; 0 keeps it. Default 300 s. */
  imageTowerIdleMs?: number;
  /** Run the text tower on the server's JS thread instead of a worker thread. */
  textTowerInThread?: boolean;
  /** Resident memory above which the server collects garbage and returns freed memory (0: never). */
  memoryTargetBytes?: number;
  /** DuckDB's buffer cap while serving; queries are answered from memory, so the catalog needs little. */
  catalogMemoryLimit?: string;
  /** JSON-lines access log; stdout when absent. */
  logFile?: string;
  /** Folders whose files may be served and ingested by path; derived from the catalog when empty. */
  roots?: string[];
  threads?: number;
  textBatch?: { maxWaitMs?: number; maxBatch?: number };
  queryCacheEntries?: number;
  limits?: Partial<Limits>;
}

/** The engine behind the API, opened, with the app that answers it: what a listener (ours, the coordinator's) serves. */
export interface OpenedServer {
  fetch: (req: Request) => Response | Promise<Response>;
  deps: AppDeps;
  /** The largest request body the app takes; a listener should allow a little more, so the app answers 413 itself. */
  maxRequestBodySize: number;
  /** Resolves once models are warm (the moment /ready turns 200). */
  ready: Promise<void>;
  /** The stages run on ingested images and their models, as `describeStageModels` says them; "" without stages. */
  stageModels: string;
  /**
   * For the listener's `error`: what fails after a route returned (a body that cannot be streamed) would otherwise
   * get Bun's development error page, HTML with the server's working directory and the error, not the API's JSON.
   */
  onError(err: Error): Response;
  close(): Promise<void>;
}

export interface RunningServer {
  url: string;
  port: number;
  deps: AppDeps;
  /** Resolves once models are warm (the moment /ready turns 200). */
  ready: Promise<void>;
  stageModels: string;
  stop(): Promise<void>;
}

export const DEFAULT_MAX_CONCURRENCY = 64;
/** The goal for p99 at 200 clients. */
export const DEFAULT_TARGET_LATENCY_MS = 200;

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const hostname = opts.host ?? "127.0.0.1";
  const opened = await openServer({ ...opts, host: hostname });
  const port = opts.port ?? 0;
  let server: Bun.Server<unknown>;
  try {
    server = Bun.serve({
      hostname,
      port,
      fetch: opened.fetch,
      maxRequestBodySize: opened.maxRequestBodySize,
      // A large ingest can take longer than Bun's default 10 s of silence on the socket.
      idleTimeout: 120,
      development: false,
      error: opened.onError,
    });
  } catch (err) {
    await opened.close();
    // Bun's own text names neither ("EINVAL: invalid argument, listen").
    throw new Error(`cannot listen on ${hostname}:${port}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const unpublish = publishServerAddress(resolve(opts.indexDir), server.url);
  const ready = opened.ready.then(() => opened.deps.log.write({ event: "listening", url: server.url.href }));
  return {
    url: server.url.href.replace(/\/$/, ""),
    port: server.port!,
    deps: opened.deps,
    ready,
    stageModels: opened.stageModels,
    stop: async () => {
      await ready.catch(() => {});
      await stopServing(server);
      unpublish();
      await opened.close();
    },
  };
}

/** Opens the index and the towers and builds the app, without listening: `startServer` and the coordinator's `--serve`. */
export async function openServer(opts: Omit<ServeOptions, "port">): Promise<OpenedServer> {
  const indexDir = resolve(opts.indexDir);
  // A root asked for by name that cannot serve a file would leave every /file and /thumb under it a 404.
  for (const dir of opts.roots ?? []) {
    const why = await unusableRoot(dir);
    if (why) throw new Error(why);
  }
  const store = await IndexStore.open(indexDir);
  const closers: (() => Promise<unknown> | unknown)[] = [() => store.close()];
  try {
    const model = await resolveModel(store.manifest.model.name, modelSearchDirs(opts.modelsDir));
    // A stage without model flags keeps the models the index last ran it with, as `imgd index` does.
    const chosenStages = await chooseStageModels(opts.stages ?? [], store.manifest.stages);
    // The stages open on the first ingest; a missing model, or a face embedder the index's named persons cannot be
    // matched with, fails here instead of every ingest failing later.
    await findStageModels(chosenStages, { modelDirs: modelSearchDirs(opts.modelsDir) }, { read: (sql, params) => store.read(sql, params), stages: store.manifest.stages });
    const stageModels = describeStageModels(chosenStages);
    const threads = opts.threads ?? Math.min(4, availableParallelism());
    // No activation arena: each run's activations go back to the system after it (see openOnnxSession). glibc's
    // mmap threshold is left to adapt (returnLargeBlocks would mmap every activation: 1.6-2x slower text batches).
    const session = { threads, arena: false };
    const text = await openTextTower(model, session, opts.textTowerInThread ?? false);
    closers.push(() => text.close());
    // On a worker thread: an image query or an ingest batch infers for tens of ms, which on the server's one JS
    // thread would hold up every other request meanwhile.
    const images = new IdleClosingTower(
      () => openImageTower(model, session).finally(trimFreedMemory),
      model.manifest.dims,
      model.manifest.preprocess,
      opts.imageTowerIdleMs ?? DEFAULT_IMAGE_TOWER_IDLE_MS,
      trimFreedMemory,
    );
    closers.push(() => images.close());
    if (opts.eagerImageTower) await images.load();

    const uploadsDir = join(indexDir, "uploads");
    mkdirSync(uploadsDir, { recursive: true });
    // Before the ingestor exists, so no upload of this server is in flight.
    const uncommitted = await removeUncommittedUploads(store, uploadsDir);
    const catalogRoots = opts.roots?.length ? [] : FileRoots.outermost(await store.folders());
    const roots = await FileRoots.of([...(opts.roots ?? []), ...catalogRoots, uploadsDir]);
    // Search hits come from memory: no DuckDB round trip (and no wait for its one connection) per request.
    // DuckDB's allocator keeps up to 128 MiB a thread of what queries freed, for the next ones; a server's catalog
    // queries are few and small, so it hands that back after each (15 MiB less after reading 100K rows' metadata).
    await store.read("SET allocator_flush_threshold = '1MB'");
    const metadata = await MetadataCache.load(store);
    store.useRecordCache(metadata);
    // Opening read every embedding into DuckDB's buffers (~200 MB at 100K); drop them and cap what may come back:
    // any later scan of the embedding column (counts, exports) would otherwise fill them again.
    const catalogMemory = opts.catalogMemoryLimit ?? "64MB";
    if (!/^\d+(\.\d+)?\s*[KMGT]i?B$/i.test(catalogMemory)) throw new Error(`catalog memory limit "${catalogMemory}" is not a size like 256MB`);
    await store.read("SET memory_limit = '16MB'");
    await store.read(`SET memory_limit = '${catalogMemory}'`);
    const textBatcher = new TextBatcher(text, { dims: model.manifest.dims, ...opts.textBatch });
    const maxInFlight = opts.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const log = new JsonLog(opts.logFile ?? null);
    closers.push(() => log.close());
    if (uncommitted.length > 0) log.write({ event: "uploads-removed", reason: "no catalog row (the server stopped before committing them)", files: uncommitted });

    const stages = new OnDemand(() => openStages(chosenStages, { modelDirs: modelSearchDirs(opts.modelsDir), threads }));
    closers.push(() => stages.close(closeStages));
    const ingestor = new OnDemand(
      async () =>
        new Ingestor({ store, embedder: images, uploadsDir, maxPixels: limits.maxPixels, stages: await stages.get() }),
    );
    closers.push(() => ingestor.close((i) => i.flush()));
    // A server decodes a HEIC for a thumbnail, an upload or a query image: two threads keep a page of HEIC results
    // coming without holding ~170 MB per core (README: 400 MB goal).
    limitHeicThreads(2);
    let ready = false;
    let governor: MemoryGovernor | null = null;
    closers.push(() => governor?.stop());
    const admission = {
      maxInFlight,
      maxQueued: opts.maxQueue ?? Math.max(1, Math.ceil(maxInFlight / 4)),
      maxWaitMs: opts.maxQueueWaitMs ?? 2000,
    };
    const deps: AppDeps = {
      store,
      metadata,
      model,
      queries: new QueryEmbeddings(textBatcher, opts.queryCacheEntries),
      textBatcher,
      images,
      ingestor,
      thumbnails: new ThumbnailCache(join(indexDir, THUMBNAIL_DIR)),
      roots,
      gates: {
        search: new ConcurrencyGate({ ...admission, targetMs: opts.targetLatencyMs ?? DEFAULT_TARGET_LATENCY_MS }),
        api: new ConcurrencyGate(admission),
        heavy: new ConcurrencyGate({ maxInFlight: 2, maxQueued: 8, maxWaitMs: 60_000 }),
      },
      log,
      limits,
      isReady: () => ready,
      memoryCollections: () => governor?.collections ?? 0,
      token: opts.token,
      cors: opts.cors,
      allowedHosts: allowedHostNames(opts.host, opts.allowedHosts),
    };
    const app = createApp(deps);

    const warm = Promise.all([
      textBatcher.embed("a photo"),
      images.loaded ? images.embed(new Float32Array(3 * model.manifest.preprocess.size ** 2), 1) : null,
    ]).then(() => {
      // Start-up garbage (the catalog pages read for the metadata, the warm-up) is collected before serving, not
      // whenever the first requests happen to trigger a collection.
      Bun.gc(true);
      trimFreedMemory();
      const target = opts.memoryTargetBytes ?? DEFAULT_MEMORY_TARGET_BYTES;
      if (target > 0) governor = governMemory(target);
      ready = true;
      log.write({ event: "ready", index: indexDir, model: model.manifest.name, stages: stageModels, roots: roots.roots });
    });

    return {
      fetch: app.fetch,
      deps,
      // Above the app's own limits, so oversized bodies get the app's JSON 413 rather than a dropped connection.
      maxRequestBodySize: limits.maxIngestBytes + 2 ** 20,
      ready: warm,
      stageModels,
      onError: (err) => {
        log.write({ level: "error", error: err.stack ?? String(err) });
        return Response.json({ error: "internal error" }, { status: 500 });
      },
      close: async () => {
        await warm.catch(() => {});
        for (const close of [...closers].reverse()) await close();
      },
    };
  } catch (err) {
    for (const close of [...closers].reverse()) await close();
    throw err;
  }
}

/** How long a stop waits for requests in flight before it cuts them off. */
const STOP_GRACE_MS = 5_000;

/**
 * Stops taking connections and lets the requests in flight finish before the engine closes under them: an ingest
 * whose images were indexed gets its report, not a reset connection. Past the grace period (a stalled upload) the
 * rest are cut off.
 */
async function stopServing(server: Bun.Server<unknown>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<boolean>((done) => (timer = setTimeout(() => done(true), STOP_GRACE_MS)));
  const cutOff = await Promise.race([server.stop().then(() => false), late]);
  clearTimeout(timer);
  if (cutOff) await server.stop(true);
}

/** The image tower on a worker thread, or in this thread when the worker cannot start (a build without it). */
async function openImageTower(model: ResolvedModel, session: SessionOptions): Promise<BatchImageEmbedder & { close(): Promise<void> }> {
  try {
    return await ThreadedImageEmbedder.open(model, session);
  } catch (err) {
    process.stderr.write(`imgd: image tower thread unavailable (${err instanceof Error ? err.message : err}); running it in-thread\n`);
    return ImageEmbedder.open(model, session);
  }
}

/** The text tower on a worker thread; in this thread when asked, or when the worker cannot start (a build without it). */
async function openTextTower(model: ResolvedModel, session: SessionOptions, inThread: boolean): Promise<TextEmbedding & { close(): Promise<void> }> {
  if (!inThread) {
    try {
      return await ThreadedTextEmbedder.open(model, session);
    } catch (err) {
      process.stderr.write(`imgd: text tower thread unavailable (${err instanceof Error ? err.message : err}); running it in-thread\n`);
    }
  }
  return TextEmbedder.open(model, session);
}
