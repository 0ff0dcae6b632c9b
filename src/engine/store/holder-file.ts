// Who holds a file that only one process may write, recorded beside it for the filesystems whose locks do not reach
// across clients: sshfs, and NFS mounted with `nolock` or `local_lock=all`, lock only within one client. There, a
// second process (on another host, or through another mount on this one) gets DuckDB's lock as if the file were
// free, and two writers corrupt it. This file is read and written as plain data, so every client sees it.
import { readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { commitFile } from "./atomic-file.ts";

export interface Holder {
  host: string;
  pid: number;
  /** When the holder last said it was alive (its clock, ms since the epoch). */
  beatAtMs: number;
}

/**
 * A holder on another host is taken for alive while it beat this recently. Generous: hosts' clocks differ, and a
 * holder's beat can wait on a slow share.
 */
export const HOLDER_STALE_MS = 60_000;
const BEAT_MS = 10_000;

export interface HeldFile {
  release(): void;
}

/**
 * Records this process as the holder in `path`, refreshed until release(), unless another live process holds it
 * (see liveHolder). A holder that is gone (it stopped beating, or its pid no longer runs on this host) is replaced.
 */
export function claimHolderFile(path: string, describe: (holder: Holder, ageMs: number) => string): HeldFile {
  // Claims of one path within this process share its file (an index opened twice, say): the last release removes it.
  const mine = claims.get(path);
  if (mine) {
    mine.count++;
    return handle(path);
  }
  refuseIfHeld(path, describe);
  const beat = () => commitFile(path, `${JSON.stringify({ host: hostname(), pid: process.pid, beatAtMs: Date.now() } satisfies Holder)}\n`);
  beat();
  const timer = setInterval(() => {
    try {
      // Taken over meanwhile (this process was stopped longer than HOLDER_STALE_MS): the other one is the holder now.
      if (isOurs(readHolder(path))) beat();
    } catch {
      // A share that is briefly away: the next beat tries again.
    }
  }, BEAT_MS);
  timer.unref();
  claims.set(path, { count: 1, timer });
  return handle(path);
}

/** One claim's release, which counts once however often it is called. */
function handle(path: string): HeldFile {
  let released = false;
  return {
    release() {
      if (released) return;
      released = true;
      releaseClaim(path);
    },
  };
}

/** A holder as messages name it after "pid": its pid here; its pid, host and last sign of life on another host. */
export function holderProcessText(holder: Holder, ageMs: number): string {
  return holder.host === hostname() ? `${holder.pid}` : `${holder.pid} on ${holder.host}, alive ${Math.round(ageMs / 1000)} s ago`;
}

/** Throws `describe`'s text when another live process holds `path`; for a reader, which must not read a file mid-write. */
export function refuseIfHeld(path: string, describe: (holder: Holder, ageMs: number) => string): void {
  const live = liveHolder(readHolder(path), Date.now());
  if (live) throw new Error(describe(live.holder, live.ageMs));
}

const claims = new Map<string, { count: number; timer: ReturnType<typeof setInterval> }>();

function releaseClaim(path: string): void {
  const claim = claims.get(path);
  if (!claim || --claim.count > 0) return;
  claims.delete(path);
  clearInterval(claim.timer);
  try {
    if (isOurs(readHolder(path))) unlinkSync(path);
  } catch {
    // Gone already, or the share is away: a holder that no longer beats is taken for gone.
  }
}

/**
 * The holder recorded in `path` if it is another process that is alive, with how long ago it beat: one that beat
 * within HOLDER_STALE_MS and, on this host, whose pid still runs (a pid alone could have been reused since).
 */
export function liveHolder(holder: Holder | undefined, nowMs: number): { holder: Holder; ageMs: number } | undefined {
  if (!holder || isOurs(holder)) return undefined;
  const ageMs = Math.max(0, nowMs - holder.beatAtMs);
  const alive = ageMs < HOLDER_STALE_MS && (holder.host !== hostname() || processAlive(holder.pid));
  return alive ? { holder, ageMs } : undefined;
}

export function readHolder(path: string): Holder | undefined {
  try {
    const v = JSON.parse(readFileSync(path, "utf8"));
    return typeof v?.host === "string" && Number.isInteger(v?.pid) && Number.isFinite(v?.beatAtMs) ? v : undefined;
  } catch {
    return undefined;
  }
}

function isOurs(holder: Holder | undefined): boolean {
  return holder?.host === hostname() && holder.pid === process.pid;
}

/** Whether `pid` runs on this host. */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: alive, but another user's.
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
