// After `imgd deploy` has started its workers: has each one registered with the coordinator? A worker that is alive
// but cannot reach it (a wrong URL, a firewall, another token) would otherwise read as "started".
import { MeshClient, MeshRefusal } from "./mesh-client.ts";
import { JobStatus, ORDERLY_LEAVE_REASONS } from "./protocol.ts";
import type { DeployRow } from "./ssh-deploy.ts";

/**
 * Polls the coordinator's status until every started worker of `rows` is in it (matched by host name and pid) or
 * `waitMs` has passed, and notes the outcome in each row. A worker still missing then fails its row. Returns a line
 * to show when the coordinator cannot be asked from here: the workers may still reach it from where they are.
 */
export async function awaitRegistration(rows: DeployRow[], coordinator: string, token: string, waitMs: number): Promise<string | null> {
  const pending = new Set(rows.filter((r) => r.ok && r.pid !== undefined && r.hostname));
  if (pending.size === 0) return null;
  const client = new MeshClient(coordinator, token, 5_000);
  const deadline = Date.now() + waitMs;
  for (;;) {
    let status: JobStatus;
    try {
      status = await client.get("/v1/status", JobStatus);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      if (!(err instanceof MeshRefusal)) return `registration not checked: ${reason}`;
      // The workers were given the same token: the coordinator refuses them too.
      for (const row of pending) fail(row, `the coordinator refused its token (${reason})`);
      return null;
    }
    for (const row of pending) {
      const w = status.workers.find((w) => w.host === row.hostname && w.pid === row.pid);
      if (!w) continue;
      // A worker may have registered, done the job and left between two polls (a small job, a fast host), or
      // registered and stopped at its first batch (a shard it may not write): the coordinator has its reason.
      if (w.state === "gone") {
        const reason = w.note?.replace(/^left: /, "") ?? "";
        if (ORDERLY_LEAVE_REASONS.has(reason) || reason === "") row.worker += `, registered as ${w.id}, since left after ${w.done} files`;
        else fail(row, `registered as ${w.id}, then left: ${reason}`);
      } else if (w.state === "lost") fail(row, `registered as ${w.id}, then lost: see imgd deploy logs ${row.host}`);
      else row.worker += `, registered as ${w.id}`;
      pending.delete(row);
    }
    if (pending.size === 0 || Date.now() >= deadline) break;
    await Bun.sleep(500);
  }
  for (const row of pending) fail(row, `not registered after ${waitMs / 1000} s: see imgd deploy logs ${row.host}`);
  return null;
}

function fail(row: DeployRow, why: string): void {
  row.worker += `, ${why}`;
  row.ok = false;
}
