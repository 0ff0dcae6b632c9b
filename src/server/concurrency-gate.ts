// Admission control: at most `maxInFlight` requests run, at most `maxQueued` wait (for at most `maxWaitMs`), and
// everything beyond that is refused at once. A refused request costs nothing; an unbounded queue costs latency
// for everyone and, eventually, memory.
export interface GateOptions {
  maxInFlight: number;
  maxQueued: number;
  maxWaitMs: number;
}

export class ConcurrencyGate {
  inFlight = 0;
  private readonly waiting: { admit: () => void; timer: ReturnType<typeof setTimeout> }[] = [];
  rejected = 0;

  constructor(readonly opts: GateOptions) {}

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves true once admitted (call `release` afterwards), false when the request should be refused. */
  acquire(): Promise<boolean> | boolean {
    if (this.inFlight < this.opts.maxInFlight) {
      this.inFlight++;
      return true;
    }
    if (this.waiting.length >= this.opts.maxQueued) {
      this.rejected++;
      return false;
    }
    return new Promise((resolve) => {
      const entry = {
        admit: () => {
          clearTimeout(entry.timer);
          this.inFlight++;
          resolve(true);
        },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          this.rejected++;
          resolve(false);
        }, this.opts.maxWaitMs),
      };
      this.waiting.push(entry);
    });
  }

  release(): void {
    this.inFlight--;
    this.waiting.shift()?.admit();
  }
}
