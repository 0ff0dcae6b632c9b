// The server's image tower: opened by the first image query or ingest, closed again after `idleMs` without one.
// Its weights are most of what an image query adds to a server (~100 MB for ViT-B/32 in int8, 350 MB in fp32),
// and many servers answer text queries for hours between uploads; the next image request pays the reopen
// (under a second for ViT-B/32's int8 tower here). Like Immich's machine-learning model TTL. An `idleMs` of 0
// keeps the tower once opened.
import type { BatchImageEmbedder } from "../engine/embed.ts";
import type { PreprocessSpec } from "../engine/types.ts";

/** Immich closes its models after 5 idle minutes too. */
export const DEFAULT_IMAGE_TOWER_IDLE_MS = 300_000;

export class IdleClosingTower implements BatchImageEmbedder {
  private tower: Promise<BatchImageEmbedder> | null = null;
  private opened = false;
  private users = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closes = 0;
  /** Set by close(): the server is stopping, and a request still running must not open a tower (a thread) again. */
  private closed = false;

  constructor(
    private readonly open: () => Promise<BatchImageEmbedder>,
    readonly dims: number,
    readonly spec: PreprocessSpec,
    private readonly idleMs: number,
    /** Called after an idle close has released the tower (to hand its memory back). */
    private readonly onIdleClose: () => void = () => {},
  ) {}

  /** True while an opened tower is held. */
  get loaded(): boolean {
    return this.opened;
  }

  /** How many times idleness closed the tower. */
  get idleCloses(): number {
    return this.closes;
  }

  /** Opens the tower now (a server told to load it at start). */
  async load(): Promise<void> {
    await this.use(async () => {});
  }

  embed(pixels: Float32Array, count: number): Promise<Float32Array> {
    return this.use((tower) => tower.embed(pixels, count));
  }

  /** For good: later embeds fail instead of opening a tower that nothing would close (it kept the process alive). */
  async close(): Promise<void> {
    this.closed = true;
    await this.release();
  }

  private async release(): Promise<void> {
    this.disarm();
    const tower = this.tower;
    this.tower = null;
    this.opened = false;
    await (await tower?.catch(() => null))?.close();
  }

  private async use<R>(work: (tower: BatchImageEmbedder) => Promise<R>): Promise<R> {
    this.users++;
    this.disarm();
    try {
      if (this.closed) throw new Error("the image tower is closed: the server is stopping");
      if (!this.tower) {
        // A failed open is not kept: the next request tries again. A close meanwhile has already let this one go.
        const opening: Promise<BatchImageEmbedder> = this.open().then(
          (t) => {
            if (this.tower === opening) this.opened = true;
            return t;
          },
          (err) => {
            if (this.tower === opening) this.tower = null;
            throw err;
          },
        );
        this.tower = opening;
      }
      return await work(await this.tower);
    } finally {
      if (--this.users === 0) this.arm();
    }
  }

  private arm(): void {
    if (this.idleMs <= 0 || !this.tower) return;
    this.timer = setTimeout(() => void this.closeIdle(), this.idleMs);
    this.timer.unref();
  }

  private disarm(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }

  private async closeIdle(): Promise<void> {
    this.timer = null;
    if (this.users > 0 || !this.tower) return;
    await this.release();
    this.closes++;
    this.onIdleClose();
  }
}
