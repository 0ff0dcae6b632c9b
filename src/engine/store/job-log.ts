// jobs.jsonl: one JSON line per finished job. Append-only, so a crash can at worst leave a torn last line.
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";

export const JOB_LOG_FILE = "jobs.jsonl";

export function appendJobLog(dir: string, record: Record<string, unknown>): void {
  mkdirSync(dir, { recursive: true });
  // A single write() with O_APPEND, so concurrent writers interleave whole lines.
  appendFileSync(join(dir, JOB_LOG_FILE), `${JSON.stringify(record)}\n`, { flag: "a" });
}
