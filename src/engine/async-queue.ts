// A bounded FIFO between pipeline stages: producers wait when it is full, so decoded tensors never pile up faster
// than the model consumes them (memory stays O(capacity), not O(files)). And a pool that keeps a few I/O requests
// in flight over many small items (a scan's stats, a re-run's hashes).
export class BoundedQueue<T> {
  private readonly items: T[] = [];
  private closed = false;
  private readonly waitingTakers: ((v: T | undefined) => void)[] = [];
  private readonly waitingPutters: (() => void)[] = [];

  constructor(private readonly capacity: number) {}

  async put(item: T): Promise<void> {
    while (this.items.length >= this.capacity && !this.closed) {
      await new Promise<void>((resolve) => this.waitingPutters.push(resolve));
    }
    const taker = this.waitingTakers.shift();
    if (taker) taker(item);
    else this.items.push(item);
  }

  /** Resolves undefined once the queue is closed and drained. */
  async take(): Promise<T | undefined> {
    const item = this.items.shift();
    if (item !== undefined) {
      this.waitingPutters.shift()?.();
      return item;
    }
    if (this.closed) return undefined;
    return new Promise((resolve) => this.waitingTakers.push(resolve));
  }

  /** Whatever is ready now, up to max, without waiting. */
  drain(max: number): T[] {
    const out = this.items.splice(0, max);
    for (let i = 0; i < out.length; i++) this.waitingPutters.shift()?.();
    return out;
  }

  close(): void {
    this.closed = true;
    for (const taker of this.waitingTakers.splice(0)) taker(undefined);
    for (const putter of this.waitingPutters.splice(0)) putter();
  }
}

/**
 * Run `work` over a queue that work items may extend, with at most `limit` in flight. Depth-first (LIFO) so a
 * deep tree does not hold every pending directory at once.
 */
export async function runPool<T>(initial: T[], limit: number, work: (item: T) => Promise<T[] | void>): Promise<void> {
  const queue = initial.slice().reverse();
  let active = 0;
  await new Promise<void>((done, fail) => {
    const pump = () => {
      if (queue.length === 0 && active === 0) return done();
      while (active < limit && queue.length > 0) {
        const item = queue.pop()!;
        active++;
        work(item).then((more) => {
          if (more) for (let i = more.length - 1; i >= 0; i--) queue.push(more[i]!);
          active--;
          pump();
        }, fail);
      }
    };
    pump();
  });
}
