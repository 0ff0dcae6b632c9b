// The flags that turn on analysis stages, shared by `imgd index`, `imgd coordinator` and `imgd serve`.
import type { StageSpec } from "../engine/analysis/open-stages.ts";

export const STAGE_FLAGS = {
  faces: { type: "boolean" },
  "face-detector": { type: "string" },
  "face-embedder": { type: "string" },
  objects: { type: "boolean" },
  "object-model": { type: "string" },
  ocr: { type: "boolean" },
} as const;

interface StageFlagValues {
  faces?: boolean;
  "face-detector"?: string;
  "face-embedder"?: string;
  objects?: boolean;
  "object-model"?: string;
  ocr?: boolean;
}

export function stageSpecs(values: StageFlagValues): StageSpec[] {
  const specs: StageSpec[] = [];
  if (values.faces) {
    specs.push({ name: "faces", models: defined({ detector: values["face-detector"], embedder: values["face-embedder"] }) });
  }
  if (values.objects) specs.push({ name: "objects", models: defined({ model: values["object-model"] }) });
  if (values.ocr) specs.push({ name: "ocr" });
  return specs;
}

function defined(models: Record<string, string | undefined>): Record<string, string> {
  return Object.fromEntries(Object.entries(models).filter((e): e is [string, string] => e[1] !== undefined));
}
