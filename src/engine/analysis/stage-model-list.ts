// Every built-in analysis-stage model (face, object, OCR) and whether its files are on this machine, for
// `imgd models list`. Importing each stage's model module registers its manifests.
import "../faces/face-models.ts";
import "../objects/yolo-model.ts";
import { locateOcrFiles, OCR_MODEL } from "../ocr/ocr-model.ts";
import { builtInStageManifests, resolveStageModel, type ResolvedStageModel, type StageModelManifest } from "./stage-model.ts";

export interface StageModelListing {
  manifest: StageModelManifest;
  /** The folder its files were found in (OCR files also come with the npm package), or null. */
  dir: string | null;
}

export function listStageModels(dirs: string[]): StageModelListing[] {
  return builtInStageManifests()
    .map((manifest) => {
      try {
        return { manifest, dir: locateStageModel(manifest.name, dirs).dir };
      } catch {
        return { manifest, dir: null };
      }
    })
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

/** A stage model's files as `imgd models` reports them: found in a models dir, or (OCR) in the package imgd carries. */
export function locateStageModel(name: string, dirs: string[]): ResolvedStageModel {
  return name === OCR_MODEL ? locateOcrFiles(dirs) : resolveStageModel(name, dirs);
}
