// Text query -> vector, remembering recent answers: the same few queries ("cat", "beach") dominate real traffic,
// and a cached vector skips tokenizer and model entirely.
import { LruCache } from "./lru-cache.ts";
import type { TextBatcher } from "./text-batcher.ts";

/** Case and spacing do not change what a user meant, so they share one cache entry. */
export function normaliseQueryText(text: string): string {
  return text.normalize("NFC").trim().replace(/\s+/g, " ").toLowerCase();
}

export class QueryEmbeddings {
  readonly cache: LruCache<string, Float32Array>;

  /** 4096 entries hold ~8.5 MB of 512-d vectors: the popular queries many times over, within a server's budget. */
  constructor(
    private readonly batcher: TextBatcher,
    maxEntries = 4096,
  ) {
    this.cache = new LruCache({ maxEntries });
  }

  async embedText(text: string): Promise<Float32Array> {
    const key = normaliseQueryText(text);
    const cached = this.cache.get(key);
    if (cached) return cached;
    const vector = await this.batcher.embed(key);
    this.cache.set(key, vector);
    return vector;
  }
}
