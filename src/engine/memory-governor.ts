// Keeps a long-lived process's (a server's, a worker's) resident memory near a target. Under sustained HTTP load JSC lets its heap pages grow to
// ~140 MB around ~20 MB of live objects (request and response garbage; `--smol` does not change it), and only a
// full collection hands them back. Above the target the governor ends the HEIC decoding threads left idle, runs a
// full collection, then has glibc return what the native side has freed: a ~7 ms pause at most every `intervalMs`,
// and none while the server is under the target.
import { endIdleHeicThreads } from "./heic-decoder.ts";
import { trimFreedMemory } from "./native-memory.ts";

/** The goal for a serving or indexing process (issue 4): 400 MB. */
export const DEFAULT_MEMORY_TARGET_BYTES = 400e6;

export interface MemoryGovernor {
  /** Full collections it has run. */
  readonly collections: number;
  stop(): void;
}

export function governMemory(targetBytes: number, intervalMs = 2_000, rss = () => process.memoryUsage.rss()): MemoryGovernor {
  let collections = 0;
  const timer = setInterval(() => {
    if (rss() <= targetBytes) return;
    // A HEIC decoding thread idle since the last look holds ~170 MB that the collector cannot reach.
    endIdleHeicThreads(intervalMs);
    Bun.gc(true);
    trimFreedMemory();
    collections++;
  }, intervalMs);
  timer.unref();
  return {
    get collections() {
      return collections;
    },
    stop: () => clearInterval(timer),
  };
}
