// Everything the HTTP layer needs, opened once at start-up (server.ts) and handed to createApp; routes reach the
// engine only through these.
import type { Ingestor } from "../engine/ingest.ts";
import type { ResolvedModel } from "../engine/models.ts";
import type { QueryEmbeddings } from "../engine/query-embeddings.ts";
import type { IndexStore } from "../engine/store/index-store.ts";
import type { MetadataCache } from "../engine/store/metadata-cache.ts";
import type { TextBatcher } from "../engine/text-batcher.ts";
import type { ThumbnailCache } from "../engine/thumbnail.ts";
import type { ConcurrencyGate } from "./concurrency-gate.ts";
import type { FileRoots } from "./file-roots.ts";
import type { JsonLog } from "./json-log.ts";
import type { IdleClosingTower } from "./idle-closing-tower.ts";
import type { OnDemand } from "./on-demand.ts";

export interface Limits {
  /** Bytes per request body on /api/ingest. */
  maxIngestBytes: number;
  /** Bytes per uploaded image (search by image, or one file of an ingest). */
  maxImageBytes: number;
  /** Images per ingest request. */
  maxIngestFiles: number;
  maxPixels: number;
  /** Bytes that all uploads being received or handled may hold together; past it an upload waits, then gets 503. */
  maxBufferedBytes: number;
  /** Bytes per request body on the other POST routes, which take small JSON (a name, face ids). */
  maxJsonBytes: number;
  /** The average rate a body holding part of the budget must keep up after `uploadGraceMs`, or it is cut off (408). */
  minUploadBytesPerSecond: number;
  uploadGraceMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxIngestBytes: 64 * 2 ** 20,
  maxImageBytes: 20 * 2 ** 20,
  maxIngestFiles: 256,
  maxPixels: 100_000_000,
  maxBufferedBytes: 64 * 2 ** 20,
  // 10,000 face ids, the most a body may list, take about 100 KB.
  maxJsonBytes: 2 ** 20,
  // 2 Mbit/s, a slow phone link's upload; at that rate the largest ingest body holds the budget for ~4 min at most.
  minUploadBytesPerSecond: 256 * 1024,
  uploadGraceMs: 10_000,
};

/** Admission by kind of request: each kind has its own slots and its own idea of a normal service time. */
export interface AdmissionGates {
  /** Searches: latency-targeted, the load the server is sized for. */
  search: ConcurrencyGate;
  /** Other API reads (metadata, thumbnails, originals): a page view asks for dozens of thumbnails at once. */
  api: ConcurrencyGate;
  /** Requests that take seconds (ingest, duplicates). */
  heavy: ConcurrencyGate;
}

export interface AppDeps {
  store: IndexStore;
  /** What search hits show, for every indexed image, in memory; its size is the indexed count. */
  metadata: MetadataCache;
  model: ResolvedModel;
  queries: QueryEmbeddings;
  textBatcher: TextBatcher;
  /** The image tower, opened by the first image query or ingest and closed again when idle. */
  images: IdleClosingTower;
  ingestor: OnDemand<Ingestor>;
  thumbnails: ThumbnailCache;
  roots: FileRoots;
  gates: AdmissionGates;
  log: JsonLog;
  limits: Limits;
  /** Set once the text tower has answered a warm-up query. */
  isReady: () => boolean;
  /** Full collections run to keep resident memory near its target (none when no target is set). */
  memoryCollections?: () => number;
  token?: string;
  cors?: string;
  /** The Host names answered (see host-check.ts); null: any. */
  allowedHosts?: string[] | null;
}
