// One JSON object per line, appended to stdout or a file; meant for log shippers, so nothing here reads it back.
import { createWriteStream, type WriteStream } from "node:fs";

export type LogRecord = Record<string, unknown>;

export class JsonLog {
  private readonly stream: WriteStream | null;

  /** `file` null writes to stdout. */
  constructor(file: string | null) {
    this.stream = file ? createWriteStream(file, { flags: "a" }) : null;
  }

  write(record: LogRecord): void {
    const line = `${JSON.stringify({ time: new Date().toISOString(), ...record })}\n`;
    if (this.stream) this.stream.write(line);
    else process.stdout.write(line);
  }

  close(): Promise<void> {
    return new Promise((resolve) => (this.stream ? this.stream.end(resolve) : resolve()));
  }
}
