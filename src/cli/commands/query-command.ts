import { resolve } from "node:path";
import { collectMatches, ensureMatchFolder } from "../../engine/collect-matches.ts";
import { modelSearchDirs, resolveModel } from "../../engine/models.ts";
import { runQuery, type QueryInput } from "../../engine/query.ts";
import { localTime } from "../../engine/store/catalog.ts";
import { IndexStore } from "../../engine/store/index-store.ts";
import { DEFAULT_INDEX, defaultThreads, intFlag, parse } from "../args.ts";
import { UsageError } from "../usage.ts";

export async function run(argv: string[]): Promise<number> {
  const t0 = performance.now();
  const { values, positionals } = parse(argv, {
    index: { type: "string" },
    models: { type: "string" },
    k: { type: "string", short: "k" },
    offset: { type: "string" },
    image: { type: "string" },
    "path-prefix": { type: "string" },
    after: { type: "string" },
    before: { type: "string" },
    has: { type: "string", multiple: true },
    "text-in": { type: "string" },
    person: { type: "string" },
    json: { type: "boolean" },
    "copy-to": { type: "string" },
    "link-to": { type: "string" },
  });
  const text = positionals.join(" ").trim();
  const stageFilters = { has: values.has, textIn: values["text-in"], person: values.person };
  const filtered = Boolean(values.has?.length || values["text-in"] || values.person || values["path-prefix"] || values.after || values.before);
  if (!text && !values.image && !filtered) throw new UsageError('query needs "TEXT", --image FILE or a filter (--has, --text-in, --person ...)');
  if (text && values.image) throw new UsageError("give either TEXT or --image, not both");
  if (values["copy-to"] && values["link-to"]) throw new UsageError("give either --copy-to or --link-to, not both");
  for (const flag of ["after", "before"] as const) {
    if (values[flag] && localTime(values[flag]!) === null) throw new UsageError(`--${flag} takes a date like 2024-06-01 or a date-time like 2024-06-01T18:30:00`);
  }

  const target = values["copy-to"] ?? values["link-to"];
  // Before the search: a folder that cannot be made would otherwise cost the search and show no hits.
  if (target) await ensureMatchFolder(resolve(target));

  const store = await IndexStore.open(resolve(values.index ?? DEFAULT_INDEX), { readOnly: true });
  try {
    const model = await resolveModel(store.manifest.model.name, modelSearchDirs(values.models));
    const input: QueryInput = values.image ? { imagePath: resolve(values.image) } : text ? { text } : { filtersOnly: true };
    const k = intFlag(values.k, "k", 10);
    const result = await runQuery(
      input,
      k,
      {
        offset: values.offset ? intFlag(values.offset, "offset", 0, 0) : undefined,
        pathPrefix: values["path-prefix"] ? resolve(values["path-prefix"]) : undefined,
        takenAfter: values.after,
        takenBefore: values.before,
        ...stageFilters,
      },
      model,
      store,
      // One query's tensors are small: past a few threads, waking them costs more than they add.
      Math.min(8, defaultThreads()),
    );
    const { written, skipped } = target
      ? await collectMatches(result.hits.map((h) => h.path), resolve(target), values["copy-to"] ? "copy" : "link")
      : { written: [], skipped: [] };
    const totalMs = performance.now() - t0;
    if (values.json) {
      process.stdout.write(
        `${JSON.stringify({ query: text || values.image || null, filters: stageFilters, hits: result.hits, written, skipped, timings: { ...result.timings, totalMs } })}\n`,
      );
    } else {
      if (result.hits.length === 0) process.stdout.write("no matches\n");
      result.hits.forEach((h, i) => {
        const date = h.takenAt ? `  ${String(h.takenAt).slice(0, 10)}` : "";
        const score = "filtersOnly" in input ? "" : `  ${h.score.toFixed(4)}`;
        process.stdout.write(`${String(i + 1).padStart(3)}${score}  ${printablePath(h.path)}${date}\n`);
      });
      if (written.length > 0) process.stdout.write(`${values["copy-to"] ? "copied" : "linked"} ${written.length} files to ${resolve(target!)}\n`);
      for (const s of skipped) process.stderr.write(`not ${values["copy-to"] ? "copied" : "linked"} (${s.reason}): ${s.path}\n`);
      process.stderr.write(
        `(${result.hits.length} results in ${totalMs.toFixed(0)} ms: embed ${result.timings.embedMs.toFixed(1)} ms, search ${result.timings.searchMs.toFixed(1)} ms)\n`,
      );
    }
    return 0;
  } finally {
    await store.close();
  }
}

/** One line per hit even for a name with a newline or other control character in it: such a path is quoted. */
function printablePath(path: string): string {
  return /[\u0000-\u001f\u007f]/.test(path) ? JSON.stringify(path) : path;
}
