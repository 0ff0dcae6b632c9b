// Opens the engine (index, model towers, caches), binds the Hono app to Bun.serve, and warms the text tower so
// /ready only turns true when a query will be fast.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { availableParallelism } from "node:os";
import { ImageEmbedder, TextEmbedder } from "../engine/embed.ts";
import { Ingestor } from "../engine/ingest.ts";
import { modelSearchDirs, resolveModel } from "../engine/models.ts";
import { QueryEmbeddings } from "../engine/query-embeddings.ts";
import { IndexStore } from "../engine/store/index-store.ts";
import { TextBatcher } from "../engine/text-batcher.ts";
import { ThumbnailCache } from "../engine/thumbnail.ts";
import { DEFAULT_LIMITS, type AppDeps, type Limits } from "./app-deps.ts";
import { createApp } from "./app.ts";
import { ConcurrencyGate } from "./concurrency-gate.ts";
import { FileRoots } from "./file-roots.ts";
import { JsonLog } from "./json-log.ts";

export interface ServeOptions {
  indexDir: string;
  modelsDir?: string;
  port?: number;
  host?: string;
  token?: string;
  cors?: string;
  /** Requests running at once; a further quarter of this may wait, the rest get 429. */
  maxConcurrency?: number;
  maxQueue?: number;
  maxQueueWaitMs?: number;
  /** JSON-lines access log; stdout when absent. */
  logFile?: string;
  /** Folders whose files may be served and ingested by path; derived from the catalog when empty. */
  roots?: string[];
  threads?: number;
  textBatch?: { maxWaitMs?: number; maxBatch?: number };
  queryCacheEntries?: number;
  limits?: Partial<Limits>;
}

export interface RunningServer {
  url: string;
  port: number;
  deps: AppDeps;
  /** Resolves once models are warm (the moment /ready turns 200). */
  ready: Promise<void>;
  stop(): Promise<void>;
}

export const DEFAULT_MAX_CONCURRENCY = 64;

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  const indexDir = resolve(opts.indexDir);
  const store = await IndexStore.open(indexDir);
  const closers: (() => Promise<unknown> | unknown)[] = [() => store.close()];
  try {
    const model = await resolveModel(store.manifest.model.name, modelSearchDirs(opts.modelsDir));
    const threads = opts.threads ?? Math.min(4, availableParallelism());
    const [text, images] = await Promise.all([TextEmbedder.open(model, { threads }), ImageEmbedder.open(model, { threads })]);
    closers.push(() => text.close(), () => images.close());

    const uploadsDir = join(indexDir, "uploads");
    mkdirSync(uploadsDir, { recursive: true });
    const catalogRoots = opts.roots?.length ? [] : FileRoots.foldersOf((await store.knownFiles()).keys());
    const roots = await FileRoots.of([...(opts.roots ?? []), ...catalogRoots, uploadsDir]);
    const textBatcher = new TextBatcher(text, { dims: model.manifest.dims, ...opts.textBatch });
    const maxInFlight = opts.maxConcurrency ?? DEFAULT_MAX_CONCURRENCY;
    const limits = { ...DEFAULT_LIMITS, ...opts.limits };
    const log = new JsonLog(opts.logFile ?? null);
    closers.push(() => log.close());

    const ingestor = new Ingestor({ store, embedder: images, uploadsDir, maxPixels: limits.maxPixels });
    closers.push(() => ingestor.flush());
    let ready = false;
    const deps: AppDeps = {
      store,
      model,
      queries: new QueryEmbeddings(textBatcher, opts.queryCacheEntries),
      textBatcher,
      images,
      ingestor,
      thumbnails: new ThumbnailCache(join(indexDir, "thumbs")),
      roots,
      gate: new ConcurrencyGate({
        maxInFlight,
        maxQueued: opts.maxQueue ?? Math.max(1, Math.ceil(maxInFlight / 4)),
        maxWaitMs: opts.maxQueueWaitMs ?? 2000,
      }),
      log,
      limits,
      isReady: () => ready,
      token: opts.token,
      cors: opts.cors,
    };
    const app = createApp(deps);
    const server = Bun.serve({
      hostname: opts.host ?? "127.0.0.1",
      port: opts.port ?? 0,
      fetch: app.fetch,
      // Above the app's own limits, so oversized bodies get the app's JSON 413 rather than a dropped connection.
      maxRequestBodySize: limits.maxIngestBytes + 2 ** 20,
      // A large ingest can take longer than Bun's default 10 s of silence on the socket.
      idleTimeout: 120,
    });
    closers.push(() => server.stop(true));

    const warm = Promise.all([
      textBatcher.embed("a photo"),
      images.embed(new Float32Array(3 * model.manifest.preprocess.size ** 2), 1),
    ]).then(() => {
      ready = true;
      log.write({ event: "ready", url: server.url.href, index: indexDir, model: model.manifest.name, roots: roots.roots });
    });

    return {
      url: server.url.href.replace(/\/$/, ""),
      port: server.port!,
      deps,
      ready: warm,
      stop: async () => {
        await warm.catch(() => {});
        for (const close of [...closers].reverse()) await close();
      },
    };
  } catch (err) {
    for (const close of [...closers].reverse()) await close();
    throw err;
  }
}
