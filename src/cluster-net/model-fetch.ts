// `imgd worker` before it registers: the job's model files that this host lacks, or holds in another version, are
// fetched from the coordinator into the worker's models dir. Each is streamed to a `.part` file while hashed, checked
// for size and sha256, and committed like every file imgd writes (fsync, rename), so it is whole and right or absent.
import { createHash } from "node:crypto";
import { mkdirSync, readdirSync, rmSync, statSync } from "node:fs";
import { open } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, dirname, join } from "node:path";
import { commitFileStreamed } from "../engine/store/atomic-file.ts";
import { FileDigests } from "./file-digests.ts";
import { MeshClient, MeshRefusal, MeshUnavailable, withBackoff } from "./mesh-client.ts";
import { MODEL_SHA256_HEADER, ModelFilesReply, type ModelFile } from "./protocol.ts";

export interface ModelFetchOptions {
  /** Where fetched files go (the --models dir, else ~/.cache/imgd/models). */
  target: string;
  /** The worker's model search path with `target` first: a model already whole and right in one of them is used as is. */
  dirs: string[];
  log: (line: string) => void;
  onRetry?: (err: Error, delayMs: number) => void;
  /** Stops the retries (the worker was told to stop). */
  signal?: AbortSignal;
  /** A transfer with no bytes for this long is dropped and retried. */
  stallMs?: number;
}

export interface ModelFetchReport {
  /** False when the coordinator serves no models (an older imgd): the worker carries on with what it has. */
  served: boolean;
  fetched: string[];
  present: string[];
}

/** Where the worker keeps the digests of model files it has checked (not `.json`: that would read as a manifest). */
export const DIGESTS_FILE = ".imgd-digests";

/** A transfer that arrived but is wrong (short, long, another sha256): retried a few times, then fatal. */
class BadTransfer extends MeshUnavailable {
  override name = "BadTransfer";
}

const BAD_TRANSFERS_TO_GIVE_UP = 3;

/** `GET /v1/models`, or null from a coordinator that serves no models (an older imgd). */
async function jobModelFiles(client: MeshClient, opts: Omit<ModelFetchOptions, "target">): Promise<ModelFilesReply | null> {
  try {
    return await withBackoff(() => client.get("/v1/models", ModelFilesReply), { onRetry: opts.onRetry, signal: opts.signal });
  } catch (err) {
    if (err instanceof MeshRefusal && err.status === 404) {
      opts.log("[worker] the coordinator serves no models (an older imgd); using the models on this host");
      return null;
    }
    throw err;
  }
}

export async function fetchJobModels(client: MeshClient, opts: ModelFetchOptions): Promise<ModelFetchReport> {
  const reply = await jobModelFiles(client, opts);
  if (!reply) return { served: false, fetched: [], present: [] };
  for (const u of reply.unavailable) {
    opts.log(`[worker] the coordinator cannot serve model ${u.model}; this host needs its own copy (${u.reason})`);
  }
  const digests = new FileDigests(join(opts.target, DIGESTS_FILE));
  const report: ModelFetchReport = { served: true, fetched: [], present: [] };
  for (const group of modelGroups(reply.files)) {
    const wanted = await filesToFetch(group, opts, digests);
    for (const file of group) if (!wanted.includes(file)) report.present.push(file.path);
    for (const file of wanted) {
      await fetchFile(client, file, opts, digests);
      report.fetched.push(file.path);
    }
  }
  if (report.fetched.length === 0 && report.present.length > 0) {
    opts.log(`[worker] the job's ${report.present.length} model files are already here`);
  }
  return report;
}

/** A model this host would use in place of the job's: the same name, other files (other weights, another version). */
export class ModelMismatch extends Error {
  override name = "ModelMismatch";
}

/**
 * With --no-fetch-models: the copies of the job's models that the engine would load here are checked against the
 * coordinator's, since a model of the same name with other weights would index into vectors no query can compare
 * with the other shards'. A model this host lacks is left to registration (CLIP) or to opening the stage.
 */
export async function checkJobModels(client: MeshClient, opts: Omit<ModelFetchOptions, "target">): Promise<void> {
  const reply = await jobModelFiles(client, opts);
  if (!reply) return;
  const digests = new Map<string, FileDigests>();
  for (const group of modelGroups(reply.files)) {
    const dir = loadedFrom(group, opts.dirs);
    if (dir === undefined) continue;
    if (!digests.has(dir)) digests.set(dir, new FileDigests(join(dir, DIGESTS_FILE)));
    for (const f of group) {
      if (await matches(join(dir, f.path), f, digests.get(dir)!)) continue;
      throw new ModelMismatch(
        `model ${f.model} on this host is not the coordinator's: ${join(dir, f.path)} differs from its ${f.path} ` +
          `(${formatBytes(f.bytes)}, sha256 ${f.sha256.slice(0, 12)}…); start the worker without --no-fetch-models to ` +
          "fetch the coordinator's copy, or copy it here",
      );
    }
  }
}

/**
 * The engine takes all of a model's ONNX files from the first dir that has them all, and a manifest from the first
 * dir that has it; each group is checked the same way. If that copy is not the coordinator's, the files the target
 * dir lacks are fetched there, and the target, first in the search path, is what the engine then finds.
 */
async function filesToFetch(group: ModelFile[], opts: ModelFetchOptions, digests: FileDigests): Promise<ModelFile[]> {
  const first = loadedFrom(group, opts.dirs);
  if (first !== undefined && (await everyMatches(group, first, digests))) return [];
  const wanted: ModelFile[] = [];
  for (const f of group) if (!(await matches(join(opts.target, f.path), f, digests))) wanted.push(f);
  return wanted;
}

async function fetchFile(client: MeshClient, file: ModelFile, opts: ModelFetchOptions, digests: FileDigests): Promise<void> {
  const dest = join(opts.target, file.path);
  opts.log(`[worker] fetching ${file.path} (${formatBytes(file.bytes)}) from the coordinator`);
  const t0 = performance.now();
  let bad = 0;
  try {
    // An unreachable coordinator is waited for, as everywhere; a wrong file is given a few more tries.
    await withBackoff(
      async () => {
        try {
          await downloadOnce(client, file, dest, opts.stallMs ?? 60_000);
        } catch (err) {
          if (err instanceof BadTransfer && ++bad >= BAD_TRANSFERS_TO_GIVE_UP) throw new Error(`${err.message} (${bad} tries)`);
          throw err;
        }
      },
      { onRetry: opts.onRetry, signal: opts.signal },
    );
  } catch (err) {
    throw new Error(`could not fetch model file ${file.path} from the coordinator: ${err instanceof Error ? err.message : err}`);
  }
  await digests.remember(dest, file.sha256);
  const s = (performance.now() - t0) / 1000;
  opts.log(`[worker] fetched ${file.path} in ${s.toFixed(1)} s (${(file.bytes / 1e6 / Math.max(s, 1e-3)).toFixed(1)} MB/s)`);
}

/** One try: stream to `<dest>.<host>-<pid>.part` while hashing; only a whole, matching file is renamed over `dest`. */
async function downloadOnce(client: MeshClient, file: ModelFile, dest: string, stallMs: number): Promise<void> {
  // Named for this process: two workers sharing a models dir (one box, or NFS) each fetch whole and rename alike.
  const part = `${dest}.${partOwner()}.part`;
  const abort = new AbortController();
  const res = await client.stream(`/v1/models/file?path=${encodeURIComponent(file.path)}`, abort);
  const served = res.headers.get(MODEL_SHA256_HEADER);
  if (served && served !== file.sha256) {
    await res.body?.cancel();
    throw new BadTransfer(
      `the coordinator's copy changed since it was listed (sha256 ${served}, listed ${file.sha256}); restart the worker to fetch the new one`,
    );
  }
  mkdirSync(dirname(dest), { recursive: true });
  removeDeadParts(dest);
  await commitFileStreamed(dest, (tmp) => streamChecked(res, file, tmp, abort, stallMs), part);
}

/** Writes the body to `path` while hashing it; throws unless it is exactly the listed bytes and sha256. */
async function streamChecked(res: Response, file: ModelFile, path: string, abort: AbortController, stallMs: number): Promise<void> {
  const out = await open(path, "w");
  const hash = createHash("sha256");
  let received = 0;
  let stall = setTimeout(() => abort.abort(), stallMs);
  const reader = res.body?.getReader();
  // The connection dropping or stalling mid-body is the coordinator being unavailable; a disk error is not.
  const read = async (): Promise<{ done: true } | { done: false; value: Uint8Array }> => {
    try {
      return reader ? await reader.read() : { done: true };
    } catch (err) {
      const why = abort.signal.aborted ? `no data for ${stallMs / 1000} s` : err instanceof Error ? err.message : String(err);
      throw new MeshUnavailable(`transfer of ${file.path} broke off after ${received} bytes: ${why}`);
    }
  };
  try {
    for (let next = await read(); !next.done; next = await read()) {
      const chunk = next.value;
      clearTimeout(stall);
      stall = setTimeout(() => abort.abort(), stallMs);
      received += chunk.byteLength;
      if (received > file.bytes) throw new BadTransfer(`got more than the listed ${file.bytes} bytes`);
      hash.update(chunk);
      await out.write(chunk);
    }
    if (received !== file.bytes) throw new BadTransfer(`got ${received} of ${file.bytes} bytes`);
    const sha256 = hash.digest("hex");
    if (sha256 !== file.sha256) throw new BadTransfer(`got sha256 ${sha256}, expected ${file.sha256}`);
  } catch (err) {
    abort.abort();
    throw err;
  } finally {
    clearTimeout(stall);
    await out.close().catch(() => {});
  }
}

function partOwner(pid = process.pid): string {
  return `${hostname()}-${pid}`;
}

/** A worker killed mid-transfer leaves its `.part`; those of dead processes on this host are removed. */
function removeDeadParts(dest: string): void {
  const prefix = `${basename(dest)}.${hostname()}-`;
  for (const name of readdirSync(dirname(dest))) {
    if (!name.startsWith(prefix) || !name.endsWith(".part")) continue;
    const pid = Number(name.slice(prefix.length, -".part".length));
    if (Number.isInteger(pid) && pid !== process.pid && !isAlive(pid)) rmSync(join(dirname(dest), name), { force: true });
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Manifests and ONNX files are resolved separately by the engine, so they are checked as separate groups. */
function modelGroups(files: ModelFile[]): ModelFile[][] {
  const groups = new Map<string, ModelFile[]>();
  for (const f of files) {
    const key = `${f.model}${f.path.includes("/") ? "/" : ".json"}`;
    groups.set(key, [...(groups.get(key) ?? []), f]);
  }
  return [...groups.values()];
}

/** The first of `dirs` that holds every file of `group`: the copy the engine would load. */
function loadedFrom(group: ModelFile[], dirs: string[]): string | undefined {
  return dirs.find((dir) => group.every((f) => isFile(join(dir, f.path))));
}

async function everyMatches(group: ModelFile[], dir: string, digests: FileDigests): Promise<boolean> {
  for (const f of group) if (!(await matches(join(dir, f.path), f, digests))) return false;
  return true;
}

/** Size first (free), then the sha256 (cached by path, size and mtime). */
async function matches(path: string, file: ModelFile, digests: FileDigests): Promise<boolean> {
  let stats;
  try {
    stats = statSync(path);
  } catch {
    return false;
  }
  return stats.isFile() && stats.size === file.bytes && (await digests.sha256(path, stats)) === file.sha256;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

function formatBytes(n: number): string {
  return n >= 1e6 ? `${Math.round(n / 1e6)} MB` : `${(n / 1e3).toFixed(1)} kB`;
}
