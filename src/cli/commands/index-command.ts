import { basename, resolve } from "node:path";
import { chooseStageModels, closeStages, describeStageModels, openStages } from "../../engine/analysis/open-stages.ts";
import { runIndex, type IndexReport } from "../../engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../engine/models.ts";
import { readManifest } from "../../engine/store/index-manifest.ts";
import { counted } from "../../engine/counted.ts";
import { isReadFailure } from "../../engine/scan.ts";
import { RunProfile } from "../../engine/run-profile.ts";
import { formatStageTable } from "../../engine/stage-timings.ts";
import { DEFAULT_MEMORY_TARGET_BYTES, governMemory } from "../../engine/memory-governor.ts";
import { returnLargeBlocks } from "../../engine/native-memory.ts";
import { DEFAULT_INDEX, DEFAULT_MODEL, defaultThreads, excludeDirNames, intFlag, parse } from "../args.ts";
import { printable } from "../printable.ts";
import { progressReporter } from "../progress-output.ts";
import { STAGE_FLAGS, stageSpecs } from "../stage-flags.ts";
import { UsageError } from "../usage.ts";

const DTYPES = ["f32", "f16", "i8"] as const;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    index: { type: "string" },
    models: { type: "string" },
    model: { type: "string" },
    batch: { type: "string" },
    threads: { type: "string" },
    list: { type: "string" },
    "follow-symlinks": { type: "boolean" },
    "exclude-dir": { type: "string", multiple: true },
    "allow-empty": { type: "boolean" },
    dtype: { type: "string" },
    connectivity: { type: "string" },
    profile: { type: "string" },
    "memory-target-mb": { type: "string" },
    json: { type: "boolean" },
    quiet: { type: "boolean", short: "q" },
    ...STAGE_FLAGS,
  });
  if (positionals.length === 0 && !values.list) throw new UsageError("index needs at least one DIR or --list FILE");
  // Unset keeps the store's default for a new index (and an existing index keeps its own).
  const dtype = values.dtype as (typeof DTYPES)[number] | undefined;
  if (dtype !== undefined && !DTYPES.includes(dtype)) throw new UsageError(`--dtype must be one of ${DTYPES.join(", ")}`);

  const indexDir = resolve(values.index ?? DEFAULT_INDEX);
  // An existing index is updated with the model it was built with unless --model says otherwise (then it refuses),
  // and its stages with the models they last ran with unless a model flag says otherwise (then they run again).
  const manifest = readManifest(indexDir);
  const modelName = values.model ?? manifest?.model.name ?? DEFAULT_MODEL;
  const chosen = await chooseStageModels(stageSpecs(values), manifest?.stages);
  const model = await resolveModel(modelName, modelSearchDirs(values.models));
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(130);
    process.stderr.write("\n[index] stopping after the current batch (Ctrl-C again to quit at once)\n");
    controller.abort();
  };
  process.on("SIGINT", onSigint);
  process.on("SIGTERM", onSigint);

  const threads = intFlag(values.threads, "threads", defaultThreads());
  const memoryTarget = intFlag(values["memory-target-mb"], "memory-target-mb", DEFAULT_MEMORY_TARGET_BYTES / 1e6, 0) * 1e6;
  // Said before the models load, so a missing one's error comes after the choice that asked for it.
  if (chosen.length > 0 && !values.json && !values.quiet) process.stderr.write(`[index] stages: ${describeStageModels(chosen)}\n`);
  const stages = await openStages(chosen, { modelDirs: modelSearchDirs(values.models), threads });
  const profile = values.profile ? await RunProfile.start(resolve(values.profile)) : undefined;
  const progress = progressReporter("index", { quiet: values.json || values.quiet });
  // As a worker indexes: freed large native blocks go back to the system, and above the target the JS heap's garbage
  // is collected (with --faces --objects, ~15 MB an image of detector tensors and outputs; 150 12 MP photos peaked
  // 40-80 MB lower with it, at the same img/s).
  returnLargeBlocks();
  const governor = memoryTarget > 0 ? governMemory(memoryTarget) : null;
  const report = await runIndex({
    roots: positionals.map((p) => resolve(p)),
    listFile: values.list ? resolve(values.list) : undefined,
    indexDir,
    model,
    batchSize: intFlag(values.batch, "batch", 32),
    threads,
    stages,
    followSymlinks: values["follow-symlinks"],
    excludeDirNames: excludeDirNames(values["exclude-dir"]),
    allowEmptyRoots: values["allow-empty"],
    vectors: { dtype, connectivity: values.connectivity ? intFlag(values.connectivity, "connectivity", 16) : undefined },
    signal: controller.signal,
    onPlan: (p) => {
      if (!values.json && !values.quiet) {
        process.stderr.write(
          `[index] ${counted(p.scanned, "file")} found, ${p.unchanged} unchanged, ${p.toProcess} to process, ${p.moved} moved, ${p.missing} no longer present\n`,
        );
      }
    },
    onProgress: (p) => progress.update(p),
  }).finally(() => {
    governor?.stop();
    return closeStages(stages);
  });
  progress.finish();
  process.off("SIGINT", onSigint);
  process.off("SIGTERM", onSigint);
  const profiled = await profile?.stop();

  if (values.json) {
    const stageModels = Object.fromEntries(chosen.map((c) => [c.name, c.models]));
    process.stdout.write(`${JSON.stringify({ index: indexDir, ...report, stageModels, profile: profiled ?? null })}\n`);
  } else {
    const out = [
      `indexed ${report.embedded}, unchanged ${report.unchanged}, moved ${report.moved}, touched ${report.touched}, removed ${report.removed}, failed ${report.failed}` +
        (report.interrupted ? " (interrupted: run again to resume)" : ""),
      `${report.imagesPerSecond.toFixed(1)} img/s, wall ${(report.wallMs / 1000).toFixed(1)} s, index ${indexDir}`,
      formatStageTable(report.stages, report.wallMs),
    ];
    if (stages.length > 0) {
      const found = Object.entries(report.found).map(([what, n]) => `${what} ${n}`).join(", ") || "nothing";
      out.splice(1, 0, `${describeStageModels(chosen)}: ${report.analysed} unchanged images analysed; found ${found}`);
    }
    if (report.failed > 0) out.push(`${report.failed} files could not be indexed: imgd info --errors --index ${indexDir}`);
    if (report.changing > 0) {
      out.push(`${report.changing} files changed or disappeared while being read: left as they were, for the next run`);
    }
    const kept = report.unreadableKept;
    if (kept.length > 0) {
      out.push(`could not read ${kept.length} indexed files (kept as indexed; the next run reads them again):`);
      for (const k of kept.slice(0, 10)) out.push(`  ${printable(k.error.includes(k.path) ? k.error : `${k.path}: ${k.error}`)}`);
      if (kept.length > 10) out.push(`  ... and ${kept.length - 10} more (--json lists them all)`);
    }
    out.push(...scanNotes(report));
    if (profiled) out.push(`profile: ${profiled.cpuProfile}, ${profiled.system}`);
    process.stdout.write(`${out.join("\n")}\n`);
  }
  return report.interrupted ? 130 : 0;
}

const NAMED_PATH_SKIPS: ReadonlySet<string> = new Set(["missing", "not-a-file", "not-an-image-extension"]);

/** What the scan passed over that the user may not expect, and roots kept because they came back empty. */
function scanNotes(report: IndexReport): string[] {
  const out: string[] = [];
  for (const { root, catalogued } of report.emptyRoots) {
    out.push(
      `${root} holds no images now, but the index has ${catalogued} files under it: kept them (an unmounted volume?). ` +
        "If they were deleted, run again with --allow-empty.",
    );
  }
  const unreadable = report.scanSkipped.filter(isReadFailure);
  const links = report.scanSkipped.filter((s) => s.reason === "symlink").length;
  if (unreadable.length > 0) {
    out.push(`could not read ${unreadable.length} paths (what the index holds under them is kept):`);
    for (const s of unreadable.slice(0, 10)) out.push(`  ${s.reason} ${printable(s.path)}`);
    if (unreadable.length > 10) out.push(`  ... and ${unreadable.length - 10} more (--json lists them all)`);
  }
  if (links > 0) out.push(`skipped ${links} symlinks (--follow-symlinks follows them)`);
  const rawPairs = report.scanSkipped.filter((s) => s.reason === "raw-beside-processed");
  if (rawPairs.length > 0) {
    // One line, naming the first: a RAW+JPEG shooter's library has such a pair for every photo, on every run.
    const more = rawPairs.length > 1 ? ` and ${rawPairs.length - 1} more` : "";
    out.push(
      `skipped ${counted(rawPairs.length, "RAW file")} beside a processed image of the same name: ${printable(rawPairs[0]!.path)}${more}`,
    );
  }
  const folders = new Map<string, number>();
  for (const s of report.scanSkipped) if (s.reason === "excluded-dir") folders.set(basename(s.path), (folders.get(basename(s.path)) ?? 0) + 1);
  if (folders.size > 0) {
    const names = [...folders].map(([name, n]) => (n > 1 ? `${printable(name)} ×${n}` : printable(name))).join(", ");
    out.push(`skipped ${counted([...folders.values()].reduce((a, b) => a + b), "folder")} by name: ${names}`);
  }
  // A folder's walk passes over what is not an image without a word; these are paths the user named (or the list did).
  const named = report.scanSkipped.filter((s) => NAMED_PATH_SKIPS.has(s.reason));
  if (named.length > 0) {
    out.push(`skipped ${named.length} paths given that name no image file:`);
    for (const s of named.slice(0, 10)) out.push(`  ${s.reason} ${printable(s.path)}`);
    if (named.length > 10) out.push(`  ... and ${named.length - 10} more (--json lists them all)`);
  }
  const undecodable = report.scanSkipped.filter((s) => s.reason === "name-not-utf8");
  if (undecodable.length > 0) {
    out.push(`skipped ${undecodable.length} paths whose names are not valid UTF-8 (rename them to index them):`);
    for (const s of undecodable.slice(0, 10)) out.push(`  ${JSON.stringify(s.path)}`);
    if (undecodable.length > 10) out.push(`  ... and ${undecodable.length - 10} more (--json lists them all)`);
  }
  return out;
}
