// Micro-batching for the text tower: a server sees many single-query requests at once, and one ONNX run over 16
// texts costs far less than 16 runs over one. Callers ask for one text each. While a model run is in progress,
// new texts queue up and go together as soon as it finishes; when the model is idle, a text waits at most
// `maxWaitMs` for company. A batch never exceeds `maxBatch` texts.
export interface TextEmbedding {
  embed(texts: string[]): Promise<Float32Array>;
}

export interface TextBatcherOptions {
  dims: number;
  /** How long a text arriving at an idle model waits for others. 0 turns batching off: every text runs alone, at once. */
  maxWaitMs?: number;
  maxBatch?: number;
}

interface Waiter {
  text: string;
  resolve: (v: Float32Array) => void;
  reject: (e: unknown) => void;
}

export class TextBatcher {
  private pending: Waiter[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private running = false;
  private readonly maxWaitMs: number;
  private readonly maxBatch: number;
  batches = 0;
  texts = 0;

  constructor(
    private readonly embedder: TextEmbedding,
    private readonly opts: TextBatcherOptions,
  ) {
    this.maxWaitMs = opts.maxWaitMs ?? 3;
    this.maxBatch = Math.max(1, opts.maxBatch ?? 32);
  }

  embed(text: string): Promise<Float32Array> {
    return new Promise((resolve, reject) => {
      const waiter = { text, resolve, reject };
      if (this.maxWaitMs <= 0) {
        void this.run([waiter]);
        return;
      }
      this.pending.push(waiter);
      if (this.running) return;
      if (this.pending.length >= this.maxBatch) this.flush();
      else this.timer ??= setTimeout(() => this.flush(), this.maxWaitMs);
    });
  }

  private flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const batch = this.pending.splice(0, this.maxBatch);
    if (batch.length === 0) return;
    // One run at a time: the session already spreads each run over its intra-op threads.
    this.running = true;
    void this.run(batch).finally(() => {
      this.running = false;
      if (this.pending.length > 0) this.flush();
    });
  }

  private async run(batch: Waiter[]): Promise<void> {
    // The same text twice in one batch (a popular query) is embedded once.
    const unique = [...new Set(batch.map((w) => w.text))];
    const row = new Map(unique.map((t, i) => [t, i]));
    this.batches++;
    this.texts += unique.length;
    try {
      const out = await this.embedder.embed(unique);
      const dims = this.opts.dims;
      for (const w of batch) {
        const i = row.get(w.text)!;
        w.resolve(out.slice(i * dims, (i + 1) * dims));
      }
    } catch (err) {
      // One text the tokenizer or model chokes on must not fail everyone who happened to share its batch.
      if (unique.length === 1) for (const w of batch) w.reject(err);
      else await Promise.all(unique.map((text) => this.run(batch.filter((w) => w.text === text))));
    }
  }
}
