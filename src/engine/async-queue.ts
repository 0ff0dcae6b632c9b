// A bounded FIFO between pipeline stages: producers wait when it is full, so decoded tensors never pile up faster
// than the model consumes them (memory stays O(capacity), not O(files)).
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
