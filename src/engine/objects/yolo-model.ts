// Object-detector models: the built-in manifests (models/*.json with task "object-detect") and their settings.
import { z } from "zod";
import testYolo from "../../../models/test-yolo.json";
import yolo11n from "../../../models/yolo11n.json";
import yolov8n from "../../../models/yolov8n.json";
import { registerStageManifests, resolveStageModel, type StageModelManifest } from "../analysis/stage-model.ts";

registerStageManifests([yolov8n, yolo11n, testYolo]);

export const DEFAULT_OBJECT_MODEL = "yolov8n";

export const yoloParamsSchema = z.object({
  /** Side of the square input; ultralytics exports default to 640. */
  inputSize: z.number().int().min(32).default(640),
  input: z.string().default("images"),
  output: z.string().default("output0"),
  /** Absent: read from the output's shape. */
  layout: z.enum(["yolov8", "yolov5"]).optional(),
  conf: z.number().min(0).max(1).default(0.25),
  iou: z.number().min(0).max(1).default(0.45),
  maxDet: z.number().int().min(1).default(300),
  maxNms: z.number().int().min(1).default(30000),
});

export type YoloParams = z.infer<typeof yoloParamsSchema>;

export interface ResolvedObjectModel {
  manifest: StageModelManifest;
  params: YoloParams;
  path: string;
}

/** Finds `<dir>/<name>/<file>` in the model search dirs; a wrong task or bad params fail here with a reason. */
export function resolveObjectModel(name: string, modelDirs: string[]): ResolvedObjectModel {
  const { manifest, paths } = resolveStageModel(name, modelDirs);
  if (manifest.task !== "object-detect") throw new Error(`model "${name}" is a ${manifest.task} model, not an object detector`);
  const params = yoloParamsSchema.safeParse(manifest.params);
  if (!params.success) throw new Error(`invalid params in model "${name}": ${params.error.message}`);
  const path = paths.model;
  if (!path) throw new Error(`model "${name}" has no "model" file in its manifest`);
  return { manifest, params: params.data, path };
}
