// One JSON object per line, appended to stdout or a file; meant for log shippers, so nothing here reads it back.
// Lines are written in batches, one write at a time: a write per line (a WriteStream) fell behind at ~700
// requests/s on a busy 2-core machine and its backlog grew without bound (11 MB after 90 s). The backlog here is
// capped; past the cap lines are dropped and counted, and a line saying how many follows once the writes catch up.
import { closeSync, openSync, write } from "node:fs";

export type LogRecord = Record<string, unknown>;

const MAX_PENDING_BYTES = 4 * 2 ** 20;

export class JsonLog {
  /** Lines dropped because the backlog was full. */
  dropped = 0;
  private pending: string[] = [];
  private pendingBytes = 0;
  private droppedSinceNote = 0;
  private writing: Promise<void> | null = null;
  private readonly fd: number | null;

  /** `file` null writes to stdout. */
  constructor(
    file: string | null,
    private readonly maxPendingBytes = MAX_PENDING_BYTES,
  ) {
    // Opened at once so a path that cannot be written fails here, at start-up, not on the first request.
    this.fd = file ? openSync(file, "a") : null;
  }

  write(record: LogRecord): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
    if (this.pendingBytes + line.length > this.maxPendingBytes) {
      this.dropped++;
      this.droppedSinceNote++;
      return;
    }
    this.pending.push(line);
    this.pendingBytes += line.length;
    this.writing ??= this.drain();
  }

  async close(): Promise<void> {
    await this.writing;
    if (this.fd !== null) closeSync(this.fd);
  }

  private async drain(): Promise<void> {
    try {
      while (this.pending.length > 0) {
        if (this.droppedSinceNote > 0) {
          const note = { time: new Date().toISOString(), level: "warn", event: "log-lines-dropped", dropped: this.droppedSinceNote };
          this.pending.push(`${JSON.stringify(note)}\n`);
          this.droppedSinceNote = 0;
        }
        const lines = this.pending;
        this.pending = [];
        this.pendingBytes = 0;
        // A failed write (disk full) loses its lines, not the server.
        await this.writeChunk(Buffer.from(lines.join(""))).catch(() => {
          this.dropped += lines.length;
          this.droppedSinceNote += lines.length;
        });
      }
    } finally {
      this.writing = null;
    }
  }

  private async writeChunk(chunk: Buffer): Promise<void> {
    const fd = this.fd;
    if (fd === null) {
      await new Promise<void>((resolve, reject) => process.stdout.write(chunk, (err) => (err ? reject(err) : resolve())));
      return;
    }
    for (let offset = 0; offset < chunk.length; ) {
      offset += await new Promise<number>((resolve, reject) =>
        write(fd, chunk, offset, chunk.length - offset, null, (err, n) => (err ? reject(err) : resolve(n))),
      );
    }
  }
}
