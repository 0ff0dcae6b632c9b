// The analysis stages imgd knows, by name, and how to open them from a plain spec (CLI flags, a coordinator's job,
// `imgd serve` settings all come down to the same spec).
import type { StageModels } from "../store/index-manifest.ts";
import type { AnalysisStage, IndexReader } from "./stage.ts";

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
  /** Model names by role when neither a flag nor the index names one. */
  defaults(): Promise<Record<string, string>>;
  /** With `index`, also checks the index can take the results (AnalysisStage.assertFitsIndex), from the manifests. */
  find(models: Record<string, string>, env: StageEnvironment, index?: IndexToFit): Promise<void>;
  open(models: Record<string, string>, env: StageEnvironment): Promise<AnalysisStage>;
}

const STAGE_KINDS: Record<StageName, StageKind> = {
  faces: {
    async defaults() {
      const faces = await import("../faces/face-models.ts");
      return { detector: faces.DEFAULT_FACE_DETECTOR, embedder: faces.DEFAULT_FACE_EMBEDDER };
    },
    async find(models, env, index) {
      const faces = await import("../faces/face-models.ts");
      faces.resolveFaceDetector(models.detector ?? faces.DEFAULT_FACE_DETECTOR, env.modelDirs);
      const embedder = faces.resolveFaceEmbedder(models.embedder ?? faces.DEFAULT_FACE_EMBEDDER, env.modelDirs);
      if (!index) return;
      const { assertEmbedderFitsPersons } = await import("../faces/persons-match.ts");
      await assertEmbedderFitsPersons(index.read, { name: embedder.manifest.name, dims: embedder.params.dims }, index.stages?.faces?.embedder);
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
    async defaults() {
      const { DEFAULT_OBJECT_MODEL } = await import("../objects/yolo-model.ts");
      return { model: DEFAULT_OBJECT_MODEL };
    },
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
    async defaults() {
      return {};
    },
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

/** Where a stage's model for one role came from. */
export type ModelSource = "flag" | "index" | "default";

export interface ChosenStage extends StageSpec {
  /** Every role's model name. */
  models: Record<string, string>;
  from: Record<string, ModelSource>;
}

/**
 * Each role's model: the one asked for, else the one the index last ran the stage with (`recorded`, from its
 * manifest), else the default. Keeping the index's models matters: others would analyse every image again, and
 * face embeddings of two models cannot be compared.
 */
export async function chooseStageModels(specs: StageSpec[], recorded: StageModels | undefined): Promise<ChosenStage[]> {
  const out: ChosenStage[] = [];
  for (const spec of specs) {
    const defaults = await STAGE_KINDS[spec.name].defaults();
    const own = recorded?.[spec.name] ?? {};
    const models: Record<string, string> = {};
    const from: Record<string, ModelSource> = {};
    for (const role of Object.keys(defaults)) {
      const given = spec.models?.[role];
      const kept = own[role];
      models[role] = given ?? kept ?? defaults[role]!;
      from[role] = given !== undefined ? "flag" : kept !== undefined ? "index" : "default";
    }
    out.push({ name: spec.name, models, from });
  }
  return out;
}

const SOURCE_WORDS: Record<ModelSource, string> = { flag: "as asked", index: "as the index last ran it", default: "default" };

/** `faces test-scrfd + test-arcface (as the index last ran it), objects yolov8n (default), ocr`, for run output. */
export function describeStageModels(chosen: readonly ChosenStage[]): string {
  return chosen
    .map((c) => {
      const roles = Object.keys(c.models);
      if (roles.length === 0) return c.name;
      const sources = new Set(roles.map((r) => c.from[r]!));
      const why =
        sources.size === 1
          ? SOURCE_WORDS[c.from[roles[0]!]!]
          : roles.map((r) => `${r} ${SOURCE_WORDS[c.from[r]!]}`).join(", ");
      return `${c.name} ${roles.map((r) => c.models[r]).join(" + ")} (${why})`;
    })
    .join(", ");
}

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

/** The index a server's stages will write to: its catalog and the stage models it last ran. */
export interface IndexToFit {
  read: IndexReader;
  stages: StageModels | undefined;
}

/**
 * Finds every stage's model files without loading them: a server opens its stages on the first ingest, and a
 * missing file must stop it at start-up, with the message (file, command to get it) opening would give. With
 * `index`, a model whose results that index cannot take (see AnalysisStage.assertFitsIndex) stops it there too.
 */
export async function findStageModels(specs: StageSpec[], env: StageEnvironment, index?: IndexToFit): Promise<void> {
  for (const spec of specs) await STAGE_KINDS[spec.name].find(spec.models ?? {}, env, index);
}

export async function closeStages(stages: AnalysisStage[]): Promise<void> {
  await Promise.all(stages.map((s) => s.close()));
}
