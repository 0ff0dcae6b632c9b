// Admission control: a bounded number of requests run, a bounded number wait, everything beyond is refused at once.
// A refused request costs nothing; an unbounded queue costs latency for everyone and, eventually, memory.
//
// With a latency target both bounds follow the measured service time. The server's work shares one JS thread (and
// one text tower), so past the point where either is busy, more requests in flight only make each one slower: the
// in-flight limit starts at a quarter of the maximum, grows while the time a request holds its slot stays under a
// twentieth of the target and shrinks back (never below that quarter) while it does not, once per round of completions.
// A request whose predicted wait exceeds another quarter is refused on arrival (429 now beats 200 too late), and
// one that has waited that long is refused then.
export interface GateOptions {
  /** The most requests that ever run at once. */
  maxInFlight: number;
  maxQueued: number;
  /** The longest any request waits for a slot. */
  maxWaitMs: number;
  /** Latency an admitted request should stay within (wait + service); 0 turns the adaptive limits off. */
  targetMs?: number;
}

/** Why a request was not admitted, and when it is worth coming back. */
export interface Refusal {
  retryAfterMs: number;
}

type Waiter = { admit: () => void; timer: ReturnType<typeof setTimeout> };

/** Weight of the newest sample in the moving average of service time. */
const EWMA_WEIGHT = 0.1;
/** The limit is adjusted once per round of `limit` completions, at most this many. */
const MAX_ROUND = 16;
/**
 * The adaptive limit never goes below this share of maxInFlight (and starts there). Hold time also grows with
 * event-loop load the limit does not cause; without a floor the limit fed on that and collapsed to 1 (half the
 * throughput, a worse p99 than a fixed 16 at 200 clients).
 */
const FLOOR_SHARE = 0.25;
/**
 * Shares of the target a request may spend holding its slot and waiting for one. The other half is for what the
 * gate cannot see: the request waiting for the event loop to read it, the response's way out, the client itself.
 */
const HOLD_SHARE = 0.05;
const WAIT_SHARE = 0.25;

export class ConcurrencyGate {
  inFlight = 0;
  rejected = 0;
  /** Moving average of how long an admitted request holds its slot, in ms. */
  serviceMs = 0;
  /** The in-flight limit now: maxInFlight without a target, adapted to the service time with one. */
  limit: number;
  private readonly floor: number;
  private sinceAdjust = 0;
  private readonly waiting: Waiter[] = [];

  constructor(readonly opts: GateOptions) {
    this.floor = Math.max(1, Math.ceil(opts.maxInFlight * FLOOR_SHARE));
    this.limit = (opts.targetMs ?? 0) > 0 ? this.floor : opts.maxInFlight;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /**
   * Resolves true once admitted (call `release` with the time the request held its slot afterwards), or a Refusal.
   * Stays synchronous when it can answer at once, so the common path costs no promise.
   */
  acquire(): Promise<true | Refusal> | true | Refusal {
    if (this.inFlight < this.limit && this.waiting.length === 0) {
      this.inFlight++;
      return true;
    }
    const wait = this.predictedWaitMs(this.waiting.length + 1);
    const budget = this.waitBudgetMs();
    if (this.waiting.length >= this.opts.maxQueued || wait > budget) return this.refuse(wait);
    return new Promise((resolve) => {
      const entry: Waiter = {
        admit: () => {
          clearTimeout(entry.timer);
          this.inFlight++;
          resolve(true);
        },
        timer: setTimeout(() => {
          this.waiting.splice(this.waiting.indexOf(entry), 1);
          resolve(this.refuse(this.predictedWaitMs(this.waiting.length)));
        }, budget),
      };
      this.waiting.push(entry);
    });
  }

  release(heldMs?: number): void {
    this.inFlight--;
    if (heldMs !== undefined) {
      this.serviceMs = this.serviceMs === 0 ? heldMs : this.serviceMs + EWMA_WEIGHT * (heldMs - this.serviceMs);
      if (++this.sinceAdjust >= Math.min(MAX_ROUND, this.limit)) this.adjustLimit();
    }
    while (this.waiting.length > 0 && this.inFlight < this.limit) this.waiting.shift()!.admit();
  }

  /** Slots free up at limit / serviceMs per ms, so the n-th in line waits about n of those intervals. */
  predictedWaitMs(position: number): number {
    return (position * this.serviceMs) / this.limit;
  }

  /** Hold time grows with the requests sharing the thread: scale the limit toward the hold time the target allows. */
  private adjustLimit(): void {
    const target = this.opts.targetMs ?? 0;
    if (target <= 0 || this.serviceMs <= 0) return;
    this.sinceAdjust = 0;
    const ratio = Math.min(1.25, Math.max(0.5, (target * HOLD_SHARE) / this.serviceMs));
    const next = Math.round(this.limit * ratio);
    this.limit = Math.min(this.opts.maxInFlight, Math.max(this.floor, next === this.limit && ratio > 1 ? next + 1 : next));
  }

  /** How long a request may wait for a slot: its share of the target, within maxWaitMs. */
  private waitBudgetMs(): number {
    const target = this.opts.targetMs ?? 0;
    return target > 0 ? Math.min(this.opts.maxWaitMs, target * WAIT_SHARE) : this.opts.maxWaitMs;
  }

  private refuse(predictedWaitMs: number): Refusal {
    this.rejected++;
    // Come back once the queue ahead has drained; never sooner than a second (Retry-After has whole seconds).
    return { retryAfterMs: Math.max(1000, predictedWaitMs + this.serviceMs) };
  }
}
