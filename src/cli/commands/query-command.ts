import { readFileSync, statSync } from "node:fs";
import { resolve, sep } from "node:path";
import { collectMatches, ensureMatchFolder, saveMatches, type CollectedMatches } from "../../engine/collect-matches.ts";
import { modelSearchDirs, resolveModel } from "../../engine/models.ts";
import { runQuery, type QueryInput, type QueryResult } from "../../engine/query.ts";
import { localTime } from "../../engine/store/catalog.ts";
import { IndexStore, type SearchHit } from "../../engine/store/index-store.ts";
import { givenToken } from "../../cluster-net/mesh-token.ts";
import { RemoteSearchError, SearchClient } from "../../server/search-client.ts";
import { runningServerFor } from "../../server/server-address.ts";
import { DEFAULT_INDEX, defaultThreads, intFlag, parse, tokenFlags } from "../args.ts";
import { printable } from "../printable.ts";
import { UsageError } from "../usage.ts";

type Values = ReturnType<typeof parseQueryArgs>["values"];
type Matches = QueryResult & CollectedMatches & { remote: boolean };

function parseQueryArgs(argv: string[]) {
  return parse(argv, {
    index: { type: "string" },
    models: { type: "string" },
    server: { type: "string" },
    token: { type: "string" },
    "token-file": { type: "string" },
    k: { type: "string", short: "k" },
    offset: { type: "string" },
    image: { type: "string" },
    "path-prefix": { type: "string" },
    after: { type: "string" },
    before: { type: "string" },
    has: { type: "string", multiple: true },
    "text-in": { type: "string" },
    person: { type: "string", multiple: true },
    json: { type: "boolean" },
    "copy-to": { type: "string" },
    "link-to": { type: "string" },
  });
}

export async function run(argv: string[]): Promise<number> {
  const t0 = performance.now();
  const { values, positionals } = parseQueryArgs(argv);
  // Labels repeated or comma-separated, as the API takes them ("--has car,person").
  values.has = values.has?.flatMap((s) => s.split(",")).map((s) => s.trim()).filter(Boolean);
  const text = positionals.join(" ").trim();
  // Every filter given, as --json reports them (undefined ones drop out of the JSON).
  const filters = {
    pathPrefix: values["path-prefix"],
    after: values.after,
    before: values.before,
    has: values.has,
    textIn: values["text-in"],
    person: values.person,
  };
  const filtered = Object.values(filters).some((v) => (Array.isArray(v) ? v.length > 0 : Boolean(v)));
  if (!text && !values.image && !filtered) throw new UsageError('query needs "TEXT", --image FILE or a filter (--has, --text-in, --person ...)');
  if (text && values.image) throw new UsageError("give either TEXT or --image, not both");
  if (values["copy-to"] && values["link-to"]) throw new UsageError("give either --copy-to or --link-to, not both");
  if (values.server && values.index) throw new UsageError("give either --index (search here) or --server (search there), not both");
  if (values.server && values["link-to"]) throw new UsageError("--link-to needs the files on this machine; with --server, use --copy-to");
  // A server's paths are absolute, and its own: a relative prefix would match nothing, in silence.
  if (values.server && values["path-prefix"] && !/^([/\\]|[A-Za-z]:[/\\])/.test(values["path-prefix"])) {
    throw new UsageError(`--path-prefix with --server is a path on the server, from its root: "${values["path-prefix"]}" would match nothing`);
  }
  for (const flag of ["after", "before"] as const) {
    if (values[flag] && localTime(values[flag]!) === null) throw new UsageError(`--${flag} takes a date like 2024-06-01 or a date-time like 2024-06-01T18:30:00`);
  }

  const target = values["copy-to"] ?? values["link-to"];
  // Before the search: a folder that cannot be made would otherwise cost the search and show no hits.
  if (target) await ensureMatchFolder(resolve(target));

  const k = intFlag(values.k, "k", 10);
  const offset = values.offset ? intFlag(values.offset, "offset", 0, 0) : undefined;
  const indexDir = resolve(values.index ?? DEFAULT_INDEX);
  // A server running on the index holds its catalog open, and answers in milliseconds besides.
  const serving = values.server ? undefined : runningServerFor(indexDir);
  const { written, skipped, ...result } = values.server
    ? await searchRemote(new SearchClient(values.server, tokenOf(values)), text, k, offset, values, "download")
    : ((serving && (await searchRemote(new SearchClient(serving.url, tokenOf(values)), text, k, offset, values, "here").catch(unlessUnreachable))) ??
      (await searchHere(indexDir, text, k, offset, values)));
  const scored = Boolean(text || values.image);
  const totalMs = performance.now() - t0;
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ query: text || values.image || null, filters, hits: result.hits, written, skipped, timings: { ...result.timings, totalMs } })}\n`,
    );
  } else {
    if (result.hits.length === 0) process.stdout.write("no matches\n");
    // Ranks count from --offset, as the --copy-to/--link-to names do: a second page goes on from the first.
    result.hits.forEach((h, i) => {
      const date = h.takenAt ? `  ${String(h.takenAt).slice(0, 10)}` : "";
      const score = scored ? `  ${h.score.toFixed(4)}` : "";
      process.stdout.write(`${String((offset ?? 0) + i + 1).padStart(3)}${score}  ${printable(h.path)}${date}\n`);
    });
    if (written.length > 0) process.stdout.write(`${values["copy-to"] ? "copied" : "linked"} ${written.length} files to ${resolve(target!)}\n`);
    for (const s of skipped) process.stderr.write(`not ${values["copy-to"] ? "copied" : "linked"} (${s.reason}): ${s.path}\n`);
    const via = values.server ? ` from ${values.server}` : serving && result.remote ? ` through imgd serve (PID ${serving.pid})` : "";
    process.stderr.write(
      `(${result.hits.length} result${result.hits.length === 1 ? "" : "s"}${via} in ${totalMs.toFixed(0)} ms: embed ${result.timings.embedMs.toFixed(1)} ms, search ${result.timings.searchMs.toFixed(1)} ms)\n`,
    );
  }
  return 0;
}

async function searchHere(indexDir: string, text: string, k: number, offset: number | undefined, values: Values): Promise<Matches> {
  const store = await IndexStore.open(indexDir, { readOnly: true });
  try {
    const model = await resolveModel(store.manifest.model.name, modelSearchDirs(values.models));
    const input: QueryInput = values.image ? { imagePath: resolve(values.image) } : text ? { text } : { filtersOnly: true };
    const filters = {
      offset,
      pathPrefix: values["path-prefix"] ? absolutePrefix(values["path-prefix"]) : undefined,
      takenAfter: values.after,
      takenBefore: values.before,
      has: values.has,
      textIn: values["text-in"],
      person: values.person,
    };
    // One query's tensors are small: past a few threads, waking them costs more than they add.
    const result = await runQuery(input, k, filters, model, store, Math.min(8, defaultThreads()));
    return { ...result, ...(await collectHere(result.hits, offset, values)), remote: false };
  } finally {
    await store.close();
  }
}

/**
 * The same search sent to a server. Its hits' paths are the server's: a server elsewhere sends the originals for
 * --copy-to, while one on this machine (found beside the index) has them here.
 */
async function searchRemote(
  client: SearchClient,
  text: string,
  k: number,
  offset: number | undefined,
  values: Values,
  files: "download" | "here",
): Promise<Matches> {
  const result = await client.search({
    text: text || undefined,
    image: values.image ? { name: values.image, bytes: readImageFile(values.image) } : undefined,
    k,
    offset,
    after: values.after,
    before: values.before,
    pathPrefix: values["path-prefix"] && files === "here" ? absolutePrefix(values["path-prefix"]) : values["path-prefix"],
    has: values.has,
    textIn: values["text-in"],
    person: values.person,
  });
  const hits: SearchHit[] = result.hits.map((h) => ({
    id: h.id,
    path: h.path,
    score: h.score,
    width: h.width,
    height: h.height,
    takenAt: h.taken_at,
    cameraMake: h.camera_make,
    cameraModel: h.camera_model,
    size: h.size,
  }));
  const timings = { embedMs: result.timings.embed ?? 0, searchMs: result.timings.search ?? 0 };
  if (files === "here") return { hits, timings, ...(await collectHere(hits, offset, values)), remote: true };
  const collected = values["copy-to"]
    ? await saveMatches(
        hits.map((h) => ({ path: h.path, read: async () => new Uint8Array(await (await client.file(h.id)).arrayBuffer()) })),
        resolve(values["copy-to"]),
        new Date(),
        (offset ?? 0) + 1,
      )
    : { written: [], skipped: [] };
  return { hits, timings, ...collected, remote: true };
}

function collectHere(hits: SearchHit[], offset: number | undefined, values: Values): Promise<CollectedMatches> {
  const target = values["copy-to"] ?? values["link-to"];
  if (!target) return Promise.resolve({ written: [], skipped: [] });
  return collectMatches(hits.map((h) => h.path), resolve(target), values["copy-to"] ? "copy" : "link", new Date(), (offset ?? 0) + 1);
}

/**
 * --path-prefix made absolute, as the index stores paths. The prefix is a string prefix ("2024/trip" takes
 * "2024/trip-b" too), so a trailing slash, which resolve() drops, is kept: "2024/trip/" means that folder only,
 * as "." and ".." do (resolve(".") alone would take the sibling folders that share the current one's name as prefix).
 */
function absolutePrefix(prefix: string): string {
  const absolute = resolve(prefix);
  const last = prefix.slice(Math.max(prefix.lastIndexOf("/"), prefix.lastIndexOf(sep)) + 1);
  return (last === "" || last === "." || last === "..") && !absolute.endsWith(sep) ? `${absolute}${sep}` : absolute;
}

function tokenOf(values: Values): string | undefined {
  return givenToken({ ...tokenFlags(values), token: values.token || undefined });
}

/** A server found beside the index that does not answer (killed, its PID reused) leaves the search to this process. */
function unlessUnreachable(err: unknown): undefined {
  if (err instanceof RemoteSearchError && err.unreachable) return undefined;
  throw err;
}

/** Read here to be uploaded: a FIFO or a folder would block or fail inside the request. */
function readImageFile(path: string): Uint8Array {
  const info = statSync(path, { throwIfNoEntry: false });
  if (!info) throw new Error(`--image ${path}: no such file`);
  if (!info.isFile()) throw new Error(`--image ${path}: not a regular file`);
  return readFileSync(path);
}
