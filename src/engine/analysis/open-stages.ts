// The analysis stages imgd knows, by name, and how to open them from a plain spec (CLI flags, a coordinator's job,
// `imgd serve` settings all come down to the same spec).
import type { AnalysisStage } from "./stage.ts";

export const STAGE_NAMES = ["faces", "objects", "ocr"] as const;
export type StageName = (typeof STAGE_NAMES)[number];

export interface StageSpec {
  name: StageName;
  /** Model names by role ("detector", "embedder", "model"); absent roles take the stage's default. */
  models?: Record<string, string>;
}

export interface StageEnvironment {
  modelDirs: string[];
  threads?: number;
}

export function isStageName(name: string): name is StageName {
  return (STAGE_NAMES as readonly string[]).includes(name);
}

/** How one stage finds its model files (without loading them) and opens itself; modules load on first use. */
interface StageKind {
  find(models: Record<string, string>, env: StageEnvironment): Promise<void>;
  open(models: Record<string, string>, env: StageEnvironment): Promise<AnalysisStage>;
}

const STAGE_KINDS: Record<StageName, StageKind> = {
  faces: {
    async find(models, env) {
      const faces = await import("../faces/face-models.ts");
      faces.resolveFaceDetector(models.detector ?? faces.DEFAULT_FACE_DETECTOR, env.modelDirs);
      faces.resolveFaceEmbedder(models.embedder ?? faces.DEFAULT_FACE_EMBEDDER, env.modelDirs);
    },
    async open(models, env) {
      const { createFacesStage } = await import("../faces/faces-stage.ts");
      const { autoAssignFaces } = await import("../faces/auto-assign.ts");
      return createFacesStage({
        modelDirs: env.modelDirs,
        threads: env.threads,
        detector: models.detector,
        embedder: models.embedder,
        // New faces go to named persons in the same transaction, one batched search per write.
        onFacesWritten: async (conn, faces) => void (await autoAssignFaces(conn, faces)),
      }) as Promise<AnalysisStage>;
    },
  },
  objects: {
    async find(models, env) {
      const { DEFAULT_OBJECT_MODEL, resolveObjectModel } = await import("../objects/yolo-model.ts");
      resolveObjectModel(models.model ?? DEFAULT_OBJECT_MODEL, env.modelDirs);
    },
    async open(models, env) {
      const { createObjectsStage } = await import("../objects/objects-stage.ts");
      return createObjectsStage({ modelDirs: env.modelDirs, threads: env.threads, model: models.model }) as Promise<AnalysisStage>;
    },
  },
  ocr: {
    async find(_models, env) {
      const { resolveOcrModel } = await import("../ocr/ocr-model.ts");
      await resolveOcrModel(env.modelDirs);
    },
    async open(_models, env) {
      const { createOcrStage } = await import("../ocr/ocr-stage.ts");
      return createOcrStage({ modelDirs: env.modelDirs, threads: env.threads }) as Promise<AnalysisStage>;
    },
  },
};

/** Opens every stage or none: a model missing for the third stage closes the first two. */
export async function openStages(specs: StageSpec[], env: StageEnvironment): Promise<AnalysisStage[]> {
  const opened: AnalysisStage[] = [];
  try {
    for (const spec of specs) opened.push(await STAGE_KINDS[spec.name].open(spec.models ?? {}, env));
    return opened;
  } catch (error) {
    await Promise.all(opened.map((s) => s.close().catch(() => {})));
    throw error;
  }
}

/**
 * Finds every stage's model files without loading them: a server opens its stages on the first ingest, and a
 * missing file must stop it at start-up, with the message (file, command to get it) opening would give.
 */
export async function findStageModels(specs: StageSpec[], env: StageEnvironment): Promise<void> {
  for (const spec of specs) await STAGE_KINDS[spec.name].find(spec.models ?? {}, env);
}

export async function closeStages(stages: AnalysisStage[]): Promise<void> {
  await Promise.all(stages.map((s) => s.close()));
}
