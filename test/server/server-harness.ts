// Real fixtures for the server tests: photos copied into a temp dir, indexed with the test model through the
// engine, and served by the real app on 127.0.0.1 with an OS-chosen port.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { startServer, type RunningServer, type ServeOptions } from "../../src/server/server.ts";

export const REPO = join(import.meta.dir, "../..");
export const PHOTOS = join(REPO, "../shared/photos");
export const MODELS = join(REPO, "models");

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `imgd-server-${prefix}-`));
}

export interface Fixture {
  root: string;
  photos: string;
  index: string;
}

/** Copies `names` from the shared photos into `<tmp>/photos/<subdir?>` and indexes them with test-clip. */
export async function indexedPhotos(prefix: string, names: string[], layout: Record<string, string> = {}): Promise<Fixture> {
  const root = tempDir(prefix);
  const photos = join(root, "photos");
  for (const n of names) {
    const dir = join(photos, layout[n] ?? "");
    mkdirSync(dir, { recursive: true });
    cpSync(join(PHOTOS, n), join(dir, n));
  }
  return indexFolder(root, photos);
}

/** Indexes `photos` (already filled) with test-clip into `<root>/index`. */
export async function indexFolder(root: string, photos: string): Promise<Fixture> {
  const index = join(root, "index");
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  await runIndex({ roots: [photos], indexDir: index, model, batchSize: 8, threads: 1 });
  return { root, photos, index };
}

/** The ids the server gives the indexed files, by file name (a search that returns them all). */
export async function idsByName(server: RunningServer, k = 10): Promise<Map<string, number>> {
  const body = (await (await fetch(`${server.url}/api/search?q=photo&k=${k}`)).json()) as { hits: { id: number; path: string }[] };
  return new Map(body.hits.map((h) => [h.path.split("/").pop()!, h.id]));
}

export async function serve(fixture: Fixture, opts: Partial<ServeOptions> = {}): Promise<RunningServer> {
  const server = await startServer({
    indexDir: fixture.index,
    modelsDir: MODELS,
    logFile: join(fixture.root, "server.log"),
    threads: 1,
    ...opts,
  });
  await server.ready;
  return server;
}

export function photo(name: string): Uint8Array<ArrayBuffer> {
  return new Uint8Array(readFileSync(join(PHOTOS, name)));
}

export function form(files: [string, Uint8Array, string?][], fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  for (const [name, bytes, field] of files) f.append(field ?? "files", new File([bytes as Uint8Array<ArrayBuffer>], name));
  for (const [k, v] of Object.entries(fields)) f.append(k, v);
  return f;
}

/**
 * A real HTTP proxy serving `upstream` under `prefix`, as nginx's `location /photos/ { proxy_pass http://imgd/; }`
 * does: the prefix is stripped and Host kept (the server is told the proxy's name with --allowed-host; an IP literal
 * needs none); any other path is 404.
 */
export function prefixProxy(upstream: string, prefix = "/photos") {
  return Bun.serve({
    port: 0,
    hostname: "127.0.0.1",
    async fetch(req) {
      const url = new URL(req.url);
      if (!url.pathname.startsWith(`${prefix}/`)) return new Response("not here", { status: 404 });
      const target = new URL(url.pathname.slice(prefix.length) + url.search, upstream);
      const res = await fetch(target, { method: req.method, headers: req.headers, body: req.body, redirect: "manual" });
      return new Response(res.body, { status: res.status, headers: res.headers });
    },
  });
}

/** Chromium for the page tests, and why they are skipped when it is not there. */
export const CHROMIUM = "/usr/bin/chromium";
export const chromiumMissing = existsSync(CHROMIUM) ? null : `${CHROMIUM} is not installed (apt-get install chromium)`;

/** Headless Chromium in a persistent context over a fresh temp dir: playwright's way of giving it its own user-data-dir. */
export async function launchChromium(): Promise<import("playwright-core").BrowserContext> {
  const { chromium } = await import("playwright-core");
  return chromium.launchPersistentContext(mkdtempSync(join(tmpdir(), "imgd-chromium-")), {
    executablePath: CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
    viewport: { width: 1100, height: 760 },
  });
}
