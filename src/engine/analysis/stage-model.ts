// Model manifests for the analysis stages (face detector/embedder, object detector, OCR): a set of files found in
// `<models dir>/<name>/` like the CLIP towers, plus the task's settings. Built-in manifests are compiled in.
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { z } from "zod";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/, "sha256 must be 64 lowercase hex digits");

const stageModelSchema = z.object({
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, "name must be lowercase letters, digits, . _ -"),
  task: z.enum(["face-detect", "face-embed", "object-detect", "ocr"]),
  description: z.string(),
  license: z.string(),
  source: z.string(),
  /** For models built locally: the command that builds them. */
  generate: z.string().optional(),
  files: z.record(
    z.string(),
    z.object({
      file: z.string().min(1).refine((f) => !/[\\/]|^\.\.?$/.test(f), "file must be a plain file name"),
      url: z.url().optional(),
      sha256: sha256Hex.optional(),
    }),
  ),
  /** Task settings (input size, thresholds, labels file...), read by the stage that owns the task. */
  params: z.record(z.string(), z.unknown()).default({}),
});

export type StageModelManifest = z.infer<typeof stageModelSchema>;

export interface ResolvedStageModel {
  manifest: StageModelManifest;
  dir: string;
  /** Role (a key of manifest.files) -> absolute path. */
  paths: Record<string, string>;
}

export function parseStageManifest(value: unknown, origin: string): StageModelManifest {
  const result = stageModelSchema.safeParse(value);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new Error(`invalid stage model manifest ${origin}: ${issues}`);
  }
  return result.data;
}

/** Built-in stage manifests; each stage module registers its own with `registerStageManifests`. */
const BUILT_IN = new Map<string, StageModelManifest>();

export function registerStageManifests(values: unknown[]): void {
  for (const v of values) {
    const m = parseStageManifest(v, "built-in");
    BUILT_IN.set(m.name, m);
  }
}

export function builtInStageManifests(): StageModelManifest[] {
  return [...BUILT_IN.values()];
}

/** Finds every file of `name` in one folder of `dirs` (the same search path as the CLIP models). */
export function resolveStageModel(name: string, dirs: string[], manifest = BUILT_IN.get(name)): ResolvedStageModel {
  if (!manifest) throw new Error(`unknown model "${name}"; known stage models: ${[...BUILT_IN.keys()].join(", ")}`);
  const roles = Object.entries(manifest.files);
  for (const base of dirs) {
    const dir = join(base, name);
    const paths = Object.fromEntries(roles.map(([role, f]) => [role, join(dir, f.file)]));
    if (Object.values(paths).every(isFile)) return { manifest, dir, paths };
  }
  const fix = manifest.generate ?? `imgd models pull ${name}`;
  throw new Error(
    `model "${name}" is missing ${roles.map(([, f]) => f.file).join(", ")}; looked in ${dirs.map((d) => join(d, name)).join(", ")}. Run: ${fix}`,
  );
}

function isFile(path: string): boolean {
  return existsSync(path) && statSync(path).isFile();
}
