// A least-recently-used map bounded by entry count and, optionally, by total bytes, so a cache of thumbnails or
// query vectors stays a fixed size however many distinct keys a long-running server sees.
export interface LruOptions<V> {
  maxEntries: number;
  maxBytes?: number;
  sizeOf?: (value: V) => number;
}

export class LruCache<K, V> {
  // A Map iterates in insertion order, so re-inserting on access keeps the oldest entry first.
  private readonly entries = new Map<K, V>();
  private bytes = 0;
  hits = 0;
  misses = 0;

  constructor(private readonly opts: LruOptions<V>) {}

  get size(): number {
    return this.entries.size;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  get(key: K): V | undefined {
    const value = this.entries.get(key);
    if (value === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.entries.delete(key);
    this.entries.set(key, value);
    return value;
  }

  set(key: K, value: V): void {
    const size = this.opts.sizeOf?.(value) ?? 0;
    if (this.opts.maxBytes !== undefined && size > this.opts.maxBytes) return;
    this.delete(key);
    this.entries.set(key, value);
    this.bytes += size;
    while (
      this.entries.size > this.opts.maxEntries ||
      (this.opts.maxBytes !== undefined && this.bytes > this.opts.maxBytes)
    ) {
      const oldest = this.entries.keys().next().value as K;
      this.delete(oldest);
    }
  }

  delete(key: K): void {
    const value = this.entries.get(key);
    if (value === undefined) return;
    this.entries.delete(key);
    this.bytes -= this.opts.sizeOf?.(value) ?? 0;
  }
}
