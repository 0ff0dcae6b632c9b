// HEIC coded with HEVC to upright 8-bit pixels, on heic-thread.ts's threads: as many as there are cores (up to
// four, two in a server) decode at once, so `imgd index` over a phone's library keeps its cores busy and `imgd serve`
// answers other requests while a photo decodes. A thread's wasm memory only grows (a 12 MP photo takes it to ~90 MB,
// a 48 MP one to ~350 MB), so a thread that grew past heicThreadLimits.keepHeapBytes is ended after its image, and an
// idle thread soon after.
import { readFile } from "node:fs/promises";
import { availableParallelism } from "node:os";
import type { BmpPixels } from "./bmp.ts";
import type { HeicPixels, HeicRequest } from "./heic-thread.ts";
import { loadSharp } from "./native.ts";
import { tooManyPixels } from "./types.ts";
import { WorkerCalls } from "./worker-calls.ts";
import { workerEntry } from "./worker-entry.ts";

/** One thread per core, up to four: what a process runs unless it is held to fewer (limitHeicThreads). */
const DEFAULT_MAX_THREADS = Math.max(1, Math.min(4, availableParallelism()));

/** Read at each decode (tests change them; limitHeicThreads sets maxThreads). */
export const heicThreadLimits = {
  /** Each thread holds ~170 MB once it has decoded a 12 MP photo. */
  maxThreads: DEFAULT_MAX_THREADS,
  /** Above a 12 MP photo's ~90 MB and below a 24 MP one's ~175 MB: a phone's usual photo keeps its thread. */
  keepHeapBytes: 128 * 2 ** 20,
  /** A thread idle this long is ended: its instance holds the memory of the largest image it decoded. */
  idleMs: 10_000,
};

/**
 * Holds this process to `threads` decoding threads (fewer where it has fewer cores): an index run to its --threads,
 * a server to two. Set from the default each time, so a run asking for more than the one before it gets them.
 */
export function limitHeicThreads(threads: number): void {
  heicThreadLimits.maxThreads = Math.max(1, Math.min(DEFAULT_MAX_THREADS, threads));
}

type Request = Omit<HeicRequest, "id">;
/** Bun's Worker, whose ref() and unref() the DOM typings in use here lack. */
type BunWorker = Worker & { ref(): void; unref(): void };

interface Thread {
  calls: WorkerCalls<Request, HeicPixels>;
  busy: boolean;
  idle: ReturnType<typeof setTimeout> | null;
  /** performance.now() when it last finished an image. */
  idleSince: number;
}

const threads: Thread[] = [];
const waiting: ((thread: Thread) => void)[] = [];
/** Threads started and ended so far: what tests and benches read to see the memory bound at work. */
export const heicThreadCounts = { started: 0, ended: 0 };

/** Whether sharp's header read (`metadata()`) describes a HEIF whose image is coded with HEVC, which libvips cannot decode. */
export function isHevcHeif(meta: { format?: string; compression?: string }): boolean {
  return meta.format === "heif" && meta.compression === "hevc";
}

/**
 * The primary image of the HEIC at `input` (its path or bytes), upright. Thrown errors carry libheif's text, for
 * the caller to classify against the file's bytes (decode.ts's asImageError).
 */
export async function decodeHevcHeif(input: string | Uint8Array): Promise<BmpPixels> {
  // A copy of its own is moved to the thread: the caller's bytes may be a view into a larger buffer, and are still
  // needed (to tell a truncated file from a corrupt one). Not Buffer's slice(), which makes a view.
  const bytes = typeof input === "string" ? new Uint8Array(await readFile(input)) : new Uint8Array(input);
  const thread = await acquire();
  // Kept only after a decode that succeeded within the heap limit. A failed one may have grown its heap for an image
  // it never finished (an error reply carries no size), or trapped and left its instance unusable: ended, which
  // costs the next image ~0.2 s to compile the wasm again, on a file that is rare in a library.
  let keep = false;
  try {
    const pixels = (await thread.calls.call({ type: "decode", bytes }, [bytes.buffer]))!;
    keep = pixels.heapBytes <= heicThreadLimits.keepHeapBytes;
    return { data: pixels.data, width: pixels.width, height: pixels.height, channels: pixels.channels };
  } finally {
    // A thread that died was ended by its error listener (start()); end() passes it over.
    if (keep) release(thread);
    else end(thread);
  }
}

/**
 * `decodeHevcHeif` for a file that may be any format: null unless sharp sees a HEIC coded with HEVC. For a caller
 * that has not read the header itself (the thumbnail renderer); its size is checked against `maxPixels` first.
 */
export async function hevcHeifPixels(source: string | Uint8Array, label: string, maxPixels: number): Promise<BmpPixels | null> {
  const meta = await loadSharp()(source, { limitInputPixels: false }).metadata().catch(() => null);
  if (!meta || !isHevcHeif(meta)) return null;
  const [width, height] = [meta.width ?? 0, meta.height ?? 0];
  if (width * height > maxPixels) throw tooManyPixels(label, width, height, maxPixels);
  return decodeHevcHeif(source);
}

/**
 * Ends the threads that have had nothing to decode for `minIdleMs` (every idle one by default): the memory governor's
 * way to give their memory back sooner. One that only waits for the pipeline's next file is left to it.
 */
export function endIdleHeicThreads(minIdleMs = 0): void {
  const now = performance.now();
  for (const thread of threads.filter((t) => !t.busy && now - t.idleSince >= minIdleMs)) end(thread);
}

function acquire(): Promise<Thread> {
  const free = threads.find((t) => !t.busy);
  if (free) return Promise.resolve(take(free));
  if (threads.length < heicThreadLimits.maxThreads) return Promise.resolve(take(start()));
  return new Promise((resolve) => waiting.push(resolve));
}

function start(): Thread {
  const worker = new Worker(workerEntry("src/engine/heic-thread.ts", new URL("./heic-thread.ts", import.meta.url)));
  const thread: Thread = { calls: new WorkerCalls<Request, HeicPixels>(worker, "HEIC decoding"), busy: false, idle: null, idleSince: 0 };
  // A thread that dies (out of memory) fails its call through WorkerCalls; it is not given another.
  worker.addEventListener("error", () => end(thread));
  threads.push(thread);
  heicThreadCounts.started++;
  return thread;
}

function take(thread: Thread): Thread {
  thread.busy = true;
  if (thread.idle) clearTimeout(thread.idle);
  thread.idle = null;
  // Held while it works, so a run does not exit with a decode in flight; let go while idle, so it does not wait on it.
  (thread.calls.worker as BunWorker).ref();
  return thread;
}

function release(thread: Thread): void {
  if (!threads.includes(thread)) return;
  const next = waiting.shift();
  if (next) return next(thread);
  thread.busy = false;
  thread.idleSince = performance.now();
  (thread.calls.worker as BunWorker).unref();
  thread.idle = setTimeout(() => end(thread), heicThreadLimits.idleMs);
  thread.idle.unref();
}

function end(thread: Thread): void {
  const at = threads.indexOf(thread);
  if (at < 0) return;
  threads.splice(at, 1);
  if (thread.idle) clearTimeout(thread.idle);
  thread.calls.worker.terminate();
  heicThreadCounts.ended++;
  // A caller waiting for a thread gets a new one in its place.
  const next = waiting.shift();
  if (next) next(take(start()));
}
