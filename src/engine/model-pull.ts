// Downloads a model's tower files into `<destRoot>/<name>/`. A partial download stays as `<file>.part` and is
// resumed with an HTTP Range request; a file only gets its real name once it is complete and, where the manifest
// knows its hash, verified.
import { createWriteStream, existsSync, mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import type { ModelManifest, TowerFile } from "./model-manifest.ts";
import { sha256File } from "./identity.ts";

export interface PullProgress {
  file: string;
  received: number;
  /** Null when the server does not say how large the file is. */
  total: number | null;
}

export interface PullOptions {
  fetch?: typeof globalThis.fetch;
  onProgress?: (p: PullProgress) => void;
}

export interface PulledFile {
  path: string;
  sha256: string;
  /** True when the manifest had a hash and the file matched it. */
  verified: boolean;
  /** True when the file was already in place and nothing was downloaded. */
  alreadyPresent: boolean;
}

export class ChecksumError extends Error {
  constructor(
    readonly url: string,
    readonly expected: string,
    readonly actual: string,
  ) {
    super(`sha256 mismatch for ${url}: expected ${expected}, got ${actual}; the partial download was deleted`);
    this.name = "ChecksumError";
  }
}

/** A file a manifest names: a CLIP tower, or one of a face, object or OCR model's files. */
export type ModelFile = Pick<TowerFile, "file" | "url" | "sha256">;

export function pullModel(manifest: ModelManifest, destRoot: string, opts: PullOptions = {}): Promise<PulledFile[]> {
  return pullModelFiles(manifest.name, [manifest.image, manifest.text], destRoot, opts);
}

export async function pullModelFiles(name: string, files: ModelFile[], destRoot: string, opts: PullOptions = {}): Promise<PulledFile[]> {
  const dir = join(destRoot, name);
  mkdirSync(dir, { recursive: true });
  const pulled: PulledFile[] = [];
  for (const file of files) pulled.push(await pullFile(name, file, dir, opts));
  return pulled;
}

async function pullFile(model: string, tower: ModelFile, dir: string, opts: PullOptions): Promise<PulledFile> {
  const path = join(dir, tower.file);
  if (existsSync(path)) {
    const sha256 = await sha256File(path);
    if (!tower.sha256 || tower.sha256 === sha256) return { path, sha256, verified: !!tower.sha256, alreadyPresent: true };
    throw new Error(`${path} exists but its sha256 ${sha256} is not the manifest's ${tower.sha256}; delete it and pull again`);
  }
  if (!tower.url) throw new Error(`model ${model} has no download URL for ${tower.file}`);

  const part = `${path}.part`;
  await download(tower.url, part, tower.file, opts);
  const sha256 = await sha256File(part);
  if (tower.sha256 && tower.sha256 !== sha256) {
    rmSync(part, { force: true });
    throw new ChecksumError(tower.url, tower.sha256, sha256);
  }
  renameSync(part, path);
  return { path, sha256, verified: !!tower.sha256, alreadyPresent: false };
}

async function download(url: string, part: string, file: string, opts: PullOptions): Promise<void> {
  const fetchFn = opts.fetch ?? globalThis.fetch;
  const have = existsSync(part) ? statSync(part).size : 0;
  const res = await fetchFn(url, { headers: have > 0 ? { Range: `bytes=${have}-` } : {} });

  // 416: our .part already holds every byte the server has; the hash check decides if it is right.
  if (res.status === 416 && have > 0) {
    await res.body?.cancel();
    return;
  }
  if (res.status !== 200 && res.status !== 206) {
    await res.body?.cancel();
    throw new Error(`download of ${url} failed: HTTP ${res.status} ${res.statusText}`);
  }
  // Only a 206 that starts where our .part ends continues it; a 200 (server ignored Range) starts over.
  const resumeAt = res.status === 206 ? contentRangeStart(res.headers.get("content-range")) : 0;
  if (res.status === 206 && resumeAt !== have) {
    await res.body?.cancel();
    throw new Error(`download of ${url}: asked for bytes from ${have}, server sent a range starting at ${resumeAt}`);
  }
  const length = Number(res.headers.get("content-length") ?? NaN);
  const total = Number.isFinite(length) ? resumeAt + length : null;

  const out = createWriteStream(part, { flags: resumeAt > 0 ? "a" : "w" });
  const closed = new Promise<void>((done, fail) => out.on("close", done).on("error", fail));
  let received = resumeAt;
  try {
    const reader = res.body?.getReader();
    for (let chunk = await reader?.read(); chunk && !chunk.done; chunk = await reader!.read()) {
      if (!out.write(chunk.value)) await new Promise((r) => out.once("drain", r));
      received += chunk.value.byteLength;
      opts.onProgress?.({ file, received, total });
    }
  } finally {
    out.end();
    await closed;
  }
  if (total !== null && received !== total) {
    throw new Error(`download of ${url} ended early at ${received} of ${total} bytes; run pull again to resume`);
  }
}

function contentRangeStart(header: string | null): number {
  const m = header?.match(/^bytes (\d+)-/);
  return m ? Number(m[1]) : -1;
}
