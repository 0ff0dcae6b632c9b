// Runs the real CLI in a child process, the way a user does.
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const REPO = join(import.meta.dir, "../..");
export const PHOTOS = join(REPO, "../shared/photos");
export const MODELS = join(REPO, "models");
const MAIN = join(REPO, "src/cli/main.ts");

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `imgd-${prefix}-`));
}

export function copyPhotos(names: string[], dir: string): void {
  for (const n of names) cpSync(join(PHOTOS, n), join(dir, n));
}

export async function imgd(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<CliResult> {
  const proc = Bun.spawn([process.execPath, MAIN, ...args], {
    cwd: opts.cwd ?? REPO,
    env: { ...process.env, IMGD_MODELS: MODELS, CI: "true", ...opts.env },
    stdout: "pipe",
    stderr: "pipe",
  });
  const [stdout, stderr, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  return { code, stdout, stderr };
}

export async function imgdJson<T = any>(args: string[], opts?: Parameters<typeof imgd>[1]): Promise<T> {
  const r = await imgd([...args, "--json"], opts);
  if (r.code !== 0) throw new Error(`imgd ${args.join(" ")} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout) as T;
}
