// Every built-in analysis-stage model (face, object, OCR) and whether its files are on this machine, for
// `imgd models list`. Importing each stage's model module registers its manifests.
import "../faces/face-models.ts";
import "../objects/yolo-model.ts";
import { OCR_MODEL, packagedOcrDir } from "../ocr/ocr-model.ts";
import { builtInStageManifests, resolveStageModel, type StageModelManifest } from "./stage-model.ts";

export interface StageModelListing {
  manifest: StageModelManifest;
  /** The folder its files were found in (OCR files also come with the npm package), or null. */
  dir: string | null;
}

export function listStageModels(dirs: string[]): StageModelListing[] {
  return builtInStageManifests()
    .map((manifest) => {
      try {
        return { manifest, dir: resolveStageModel(manifest.name, dirs, manifest).dir };
      } catch {
        return { manifest, dir: manifest.name === OCR_MODEL ? packagedOcrDir() : null };
      }
    })
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}
