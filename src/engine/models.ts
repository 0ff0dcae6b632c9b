// Where model files live on this machine: the search path, which manifests and files are present, and whether
// the files are the ones the manifest names.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { delimiter, join, resolve } from "node:path";
import { BUILT_IN_MANIFESTS, parseManifest, type ModelManifest } from "./model-manifest.ts";
import { sha256File } from "./identity.ts";

export { BUILT_IN_MANIFESTS, ManifestError, parseManifest, type ModelManifest, type TowerFile } from "./model-manifest.ts";

/** The CLIP model a new index or job uses when none is named. */
export const DEFAULT_MODEL = "clip-vit-b32";

export interface ResolvedModel {
  manifest: ModelManifest;
  /** `<models dir>/<name>`: the folder both tower files were found in. */
  dir: string;
  imagePath: string;
  textPath: string;
}

export interface ModelListing {
  manifest: ModelManifest;
  /** "built-in" or the path of the manifest file that defined it. */
  origin: string;
  /** Where each tower file was found, or null when it is in none of the dirs. */
  imagePath: string | null;
  textPath: string | null;
}

export interface ModelList {
  models: ModelListing[];
  /** JSON files in a models dir that look like manifests but do not validate. */
  invalid: { path: string; error: string }[];
}

export class MissingModelError extends Error {
  constructor(
    readonly model: string,
    readonly missing: string[],
    readonly searched: string[],
    readonly fix: string,
  ) {
    super(
      `model "${model}" is missing ${missing.join(" and ")}; looked in ${searched.map((d) => join(d, model)).join(", ") || "(no dirs)"}. ` +
        `Run: ${fix}`,
    );
    this.name = "MissingModelError";
  }
}

export class UnknownModelError extends Error {
  constructor(name: string, known: string[]) {
    super(`unknown model "${name}"; known models: ${known.join(", ")}`);
    this.name = "UnknownModelError";
  }
}

/** Search order: --models flag, $IMGD_MODELS (path-list), ./models, ~/.cache/imgd/models. */
export function modelSearchDirs(flag?: string, env: NodeJS.ProcessEnv = process.env): string[] {
  const dirs = [
    ...(flag ? [flag] : []),
    ...(env.IMGD_MODELS ? env.IMGD_MODELS.split(delimiter).filter(Boolean) : []),
    "models",
    join(homedir(), ".cache", "imgd", "models"),
  ].map((d) => resolve(d));
  return [...new Set(dirs)];
}

export function listModels(dirs: string[]): ModelList {
  const invalid: ModelList["invalid"] = [];
  const manifests = new Map<string, { manifest: ModelManifest; origin: string }>();
  // A manifest file in a models dir overrides the built-in one of the same name; earlier dirs win.
  for (const dir of dirs) {
    for (const path of manifestFiles(dir)) {
      try {
        const json = JSON.parse(readFileSync(path, "utf8"));
        // Analysis-stage models (detectors, OCR) have a `task` and their own manifest shape: see stage-model.ts.
        if (json && typeof json === "object" && "task" in json) continue;
        const manifest = parseManifest(json, path);
        if (!manifests.has(manifest.name)) manifests.set(manifest.name, { manifest, origin: path });
      } catch (err) {
        invalid.push({ path, error: (err as Error).message });
      }
    }
  }
  for (const manifest of BUILT_IN_MANIFESTS) {
    if (!manifests.has(manifest.name)) manifests.set(manifest.name, { manifest, origin: "built-in" });
  }
  const models = [...manifests.values()]
    .map(({ manifest, origin }) => ({
      manifest,
      origin,
      imagePath: findFile(dirs, manifest.name, manifest.image.file),
      textPath: findFile(dirs, manifest.name, manifest.text.file),
    }))
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
  return { models, invalid };
}

export function findManifest(name: string, dirs: string[]): ModelManifest {
  const { models } = listModels(dirs);
  const found = models.find((m) => m.manifest.name === name);
  if (!found) throw new UnknownModelError(name, models.map((m) => m.manifest.name));
  return found.manifest;
}

export async function resolveModel(name: string, dirs: string[]): Promise<ResolvedModel> {
  const manifest = findManifest(name, dirs);
  const files = [manifest.image.file, manifest.text.file];
  // Both towers must come from one folder: mixing files from two copies of a model is never what anyone wants.
  for (const base of dirs) {
    const dir = join(base, name);
    if (files.every((f) => isFile(join(dir, f)))) {
      return { manifest, dir, imagePath: join(dir, manifest.image.file), textPath: join(dir, manifest.text.file) };
    }
  }
  const missing = files.filter((f) => !findFile(dirs, name, f));
  throw new MissingModelError(name, missing.length > 0 ? missing : files, dirs, fixCommand(manifest));
}

export type FileCheck = "ok" | "mismatch" | "unknown";

export interface VerifiedFile {
  /** "image" or "text" for a CLIP tower; a stage model's file role ("model", "detector"...) otherwise. */
  tower: string;
  path: string;
  status: FileCheck;
  expected: string | null;
  actual: string;
}

export function verifyModel(model: ResolvedModel): Promise<VerifiedFile[]> {
  return verifyFiles([
    ["image", model.imagePath, model.manifest.image.sha256],
    ["text", model.textPath, model.manifest.text.sha256],
  ]);
}

/** Each [role, path, expected sha256] checked against the file's actual hash. */
export function verifyFiles(files: (readonly [string, string, string | undefined])[]): Promise<VerifiedFile[]> {
  return Promise.all(
    files.map(async ([tower, path, expected]) => {
      const actual = await sha256File(path);
      const status: FileCheck = !expected ? "unknown" : expected === actual ? "ok" : "mismatch";
      return { tower, path, status, expected: expected ?? null, actual };
    }),
  );
}


function fixCommand(manifest: ModelManifest): string {
  return manifest.generate ?? `imgd models pull ${manifest.name}`;
}

function manifestFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith(".json"))
    .sort()
    .map((f) => join(dir, f))
    .filter(isFile);
}

function findFile(dirs: string[], name: string, file: string): string | null {
  for (const base of dirs) {
    const path = join(base, name, file);
    if (isFile(path)) return path;
  }
  return null;
}

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}
