// Real processes on 127.0.0.1: the CLI's coordinator and workers, photos made from the shared set with sharp.
import { mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Subprocess } from "bun";
import { loadSharp } from "../../src/engine/native.ts";
import type { JobStatus } from "../../src/cluster-net/protocol.ts";

export const REPO = join(import.meta.dir, "../..");
export const PHOTOS = join(REPO, "../shared/photos");
export const MODELS = join(REPO, "models");
export const BUN = process.execPath;
export const CLI = join(import.meta.dir, "../../src/cli/main.ts");
export const TOKEN = "test-token-0123456789";

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `imgd-cluster-${prefix}-`));
}

/** `count` distinct small JPEGs: the shared photos resized and tinted, each one different in pixels and name. */
export async function makePhotos(dir: string, count: number, side = 64): Promise<string[]> {
  mkdirSync(dir, { recursive: true });
  const sharp = loadSharp();
  const sources = readdirSync(PHOTOS).filter((n) => /\.(jpe?g|png)$/i.test(n)).sort();
  const out: string[] = [];
  await Promise.all(
    Array.from({ length: count }, async (_, i) => {
      const src = join(PHOTOS, sources[i % sources.length]!);
      const path = join(dir, `img-${String(i).padStart(4, "0")}.jpg`);
      const tint = { r: (i * 37) % 256, g: (i * 91) % 256, b: (i * 53) % 256 };
      await sharp(src).resize(side, side, { fit: "cover" }).tint(tint).jpeg({ quality: 80 }).toFile(path);
      out.push(path);
    }),
  );
  return out.sort();
}

export interface Proc {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  stdout: string[];
  stderr: string[];
  /** Resolves with the first stdout/stderr line matching. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number>;
}

export function spawnCli(args: string[], env: Record<string, string> = {}, cwd = REPO): Proc {
  return spawnCommand([BUN, CLI, ...args], env, cwd);
}

/** Any command (the compiled dist/imgd too) with its output read line by line as it comes. */
export function spawnCommand(argv: string[], env: Record<string, string> = {}, cwd = REPO): Proc {
  const proc = Bun.spawn(argv, {
    cwd,
    env: { ...process.env, CI: "true", IMGD_MODELS: MODELS, ...env },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const stdout: string[] = [];
  const stderr: string[] = [];
  const waiters: { re: RegExp; resolve: (l: string) => void }[] = [];
  const pump = async (stream: ReadableStream<Uint8Array>, lines: string[]) => {
    let buf = "";
    const decoder = new TextDecoder();
    const reader = stream.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      buf += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (process.env.IMGD_TEST_ECHO) process.stderr.write(`  | ${line}\n`);
        for (const w of [...waiters]) if (w.re.test(line)) { waiters.splice(waiters.indexOf(w), 1); w.resolve(line); }
      }
    }
  };
  void pump(proc.stdout, stdout);
  void pump(proc.stderr, stderr);
  return {
    proc,
    stdout,
    stderr,
    exited: proc.exited,
    waitFor(re, timeoutMs = 30_000) {
      const seen = [...stdout, ...stderr].find((l) => re.test(l));
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; stderr:\n${stderr.slice(-20).join("\n")}`)), timeoutMs);
        waiters.push({ re, resolve: (l) => (clearTimeout(t), resolve(l)) });
      });
    },
  };
}

export async function startCoordinatorProc(
  roots: string[],
  storage: string,
  extra: string[] = [],
): Promise<{ p: Proc; url: string }> {
  const p = spawnCli(["coordinator", ...roots, "--storage", storage, "--port", "0", "--bind", "127.0.0.1", "--token", TOKEN, "--model", "test-clip", ...extra]);
  const line = await p.waitFor(/"event":"listening"/);
  return { p, url: `http://127.0.0.1:${JSON.parse(line).port}` };
}

/** `cwd` elsewhere than the checkout (and IMGD_MODELS empty) gives a worker that has no models of its own. */
export function startWorkerProc(url: string, extra: string[] = [], env: Record<string, string> = {}, cwd = REPO): Proc {
  return spawnCli(["worker", "--coordinator", url, "--threads", "1", ...extra], { IMGD_TOKEN: TOKEN, ...env }, cwd);
}

export async function fetchStatus(url: string, token = TOKEN): Promise<JobStatus> {
  const res = await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  if (!res.ok) throw new Error(`status: HTTP ${res.status}`);
  return (await res.json()) as JobStatus;
}

export async function until<T>(probe: () => Promise<T | null | undefined | false>, timeoutMs = 30_000, what = "condition"): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = await probe().catch(() => null);
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(50);
  }
}
