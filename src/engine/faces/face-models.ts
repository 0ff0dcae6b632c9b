// Face detector and embedder models: the built-in manifests (models/*.json with task "face-detect" / "face-embed")
// and their settings, found through the same model search path as the CLIP towers.
import { z } from "zod";
import arcfaceR50 from "../../../models/arcface-r50.json";
import scrfd10g from "../../../models/scrfd-10g.json";
import scrfd500m from "../../../models/scrfd-500m.json";
import testArcface from "../../../models/test-arcface.json";
import testScrfd from "../../../models/test-scrfd.json";
import { registerStageManifests, resolveStageModel, type StageModelManifest } from "../analysis/stage-model.ts";

registerStageManifests([scrfd10g, scrfd500m, arcfaceR50, testScrfd, testArcface]);

export const DEFAULT_FACE_DETECTOR = "scrfd-10g";
export const DEFAULT_FACE_EMBEDDER = "arcface-r50";

export const detectorParamsSchema = z.object({
  /** Width and height of the input square; det_10g's input is dynamic and insightface runs it at 640x640. */
  inputSize: z.tuple([z.number().int().min(32), z.number().int().min(32)]).default([640, 640]),
  /** Absent: the session's first input. */
  input: z.string().optional(),
  /** Outputs in scrfd.py's order (scores, boxes, landmarks per stride). Absent: the session's order, as scrfd.py. */
  outputs: z.array(z.string()).optional(),
  scoreThreshold: z.number().min(0).max(1).default(0.5),
  nmsThreshold: z.number().min(0).max(1).default(0.4),
  mean: z.number().default(127.5),
  std: z.number().positive().default(128),
});

export const embedderParamsSchema = z.object({
  inputSize: z.number().int().min(8).default(112),
  input: z.string().optional(),
  output: z.string().optional(),
  dims: z.number().int().min(1).default(512),
  /** Channel order the net was trained on; insightface feeds RGB (blobFromImage with swapRB from cv2's BGR). */
  channelOrder: z.enum(["rgb", "bgr"]).default("rgb"),
  mean: z.number().default(127.5),
  std: z.number().positive().default(127.5),
  /** Crops per session run; 1 for exports with a fixed batch dimension. */
  maxBatch: z.number().int().min(1).default(32),
});

export type DetectorParams = z.infer<typeof detectorParamsSchema>;
export type EmbedderParams = z.infer<typeof embedderParamsSchema>;

export interface ResolvedFaceModel<P> {
  manifest: StageModelManifest;
  params: P;
  path: string;
}

function resolveFaceModel<P>(name: string, modelDirs: string[], task: "face-detect" | "face-embed", schema: z.ZodType<P>): ResolvedFaceModel<P> {
  const { manifest, paths } = resolveStageModel(name, modelDirs);
  if (manifest.task !== task) throw new Error(`model "${name}" is a ${manifest.task} model, not a ${task} model`);
  const params = schema.safeParse(manifest.params);
  if (!params.success) throw new Error(`invalid params in model "${name}": ${params.error.message}`);
  const path = paths.model;
  if (!path) throw new Error(`model "${name}" has no "model" file in its manifest`);
  return { manifest, params: params.data, path };
}

export function resolveFaceDetector(name: string, modelDirs: string[]): ResolvedFaceModel<DetectorParams> {
  return resolveFaceModel(name, modelDirs, "face-detect", detectorParamsSchema);
}

export function resolveFaceEmbedder(name: string, modelDirs: string[]): ResolvedFaceModel<EmbedderParams> {
  return resolveFaceModel(name, modelDirs, "face-embed", embedderParamsSchema);
}
