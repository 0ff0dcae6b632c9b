// A resource opened on first use and kept (the ingestor, the analysis stages): a server that never ingests never
// pays for them. A failed open is not remembered, so the next request tries again.
export class OnDemand<T> {
  private opening: Promise<T> | null = null;
  private value: T | null = null;

  constructor(private readonly open: () => Promise<T>) {}

  get loaded(): boolean {
    return this.value !== null;
  }

  get(): Promise<T> {
    this.opening ??= this.open().then(
      (v) => (this.value = v),
      (err) => {
        this.opening = null;
        throw err;
      },
    );
    return this.opening;
  }

  /** Runs `close` on the value if it was ever opened (waiting for an open in progress). */
  async close(close: (value: T) => Promise<unknown> | unknown): Promise<void> {
    const v = await this.opening?.catch(() => null);
    if (v) await close(v);
  }
}
