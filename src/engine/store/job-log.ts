// jobs.jsonl: one JSON line per job, appended with O_APPEND. It is never read back to be rewritten, so appending
// costs the same whether the log has ten lines or ten million.
import { appendFileSync } from "node:fs";
import { join } from "node:path";

export const JOB_LOG = "jobs.jsonl";

export function appendJobLog(indexDir: string, record: Record<string, unknown>): void {
  appendFileSync(join(indexDir, JOB_LOG), `${JSON.stringify(record)}\n`);
}
