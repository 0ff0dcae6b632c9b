// The copy of an ONNX model that onnxruntime opens: its weights in a side file it maps (onnx-external-data.ts).
// bench/model-open.ts: a ViT-B/32-sized int8 text tower opens in 136 instead of 262 ms, an fp32 one in 321 instead
// of 843 ms with a peak 140 MiB lower, and processes on one host share the weights' pages. The copy lives in a
// cache dir, keyed by the model's path, size and mtime; the model file itself is never touched.
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { cacheDirs } from "./cache-dirs.ts";
import { externalizeOnnx, NotMappableError } from "./onnx-external-data.ts";

/** Bumped when the layout of the copies changes, so old copies are never opened. */
const LAYOUT = 1;
/** Smaller models gain nothing worth a second copy on disk. */
export const MIN_MAPPED_MODEL_BYTES = 4 << 20;

/** $IMGD_MODEL_CACHE ("off": open models as they are), else $XDG_CACHE_HOME/imgd/mapped-models, else a temp dir. */
function cacheRoots(): string[] {
  const set = process.env.IMGD_MODEL_CACHE;
  if (set === "off") return [];
  return set ? [set] : cacheDirs("mapped-models");
}

/** Each copy's folder names the model it was made from, so copies of deleted models can be found and removed. */
const SOURCE_FILE = "source";

/** Removes the copies of models that no longer exist (temporary model folders, models moved or deleted). */
function pruneOrphans(root: string): void {
  for (const entry of readdirSync(root)) {
    try {
      const source = readFileSync(join(root, entry, SOURCE_FILE), "utf8");
      if (!existsSync(source)) rmSync(join(root, entry), { recursive: true, force: true });
    } catch {
      // a folder being made right now, or not ours: left alone
    }
  }
}

function hash(text: string): string {
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

/**
 * The path to open for the model at `source`: its mappable copy, made on first use, or `source` itself when the
 * model is small, already keeps its weights outside, or no cache dir can take a copy.
 */
export function mappedModelPath(source: string, minBytes = MIN_MAPPED_MODEL_BYTES): string {
  let real: string;
  let stat: { size: number; mtimeMs: number };
  try {
    real = realpathSync(source);
    stat = statSync(real);
  } catch {
    return source; // onnxruntime reports the missing file in its own words
  }
  if (stat.size < minBytes) return source;
  const name = `model-${hash(`${LAYOUT} ${stat.size} ${stat.mtimeMs}`)}.onnx`;
  for (const root of cacheRoots()) {
    // One folder per source model: a changed model replaces its old copy instead of piling up beside it.
    const dir = join(root, hash(real));
    const target = join(dir, name);
    // Weights held in Constant nodes (as paddle2onnx writes them) cannot be external data: such a model is marked
    // as having nothing to map rather than copied for nothing.
    const nothingToMap = `${target}.none`;
    // Both files or neither: a side file removed by hand (a cache clean-up) means the copy is made again.
    if (existsSync(target) && existsSync(`${target}.data`)) return target;
    if (existsSync(nothingToMap)) return source;
    try {
      mkdirSync(dir, { recursive: true });
      pruneOrphans(root);
      for (const old of readdirSync(dir)) {
        if (!old.startsWith(name) && old !== SOURCE_FILE) rmSync(join(dir, old), { force: true });
      }
      writeFileSync(join(dir, SOURCE_FILE), real);
      if (externalizeOnnx(real, target).tensors > 0) return target;
      rmSync(target, { force: true });
      rmSync(`${target}.data`, { force: true });
      writeFileSync(nothingToMap, "");
      return source;
    } catch (err) {
      // The model itself is the problem (already split, or not ONNX): another cache dir would not help.
      if (err instanceof NotMappableError) return source;
    }
  }
  return source;
}
