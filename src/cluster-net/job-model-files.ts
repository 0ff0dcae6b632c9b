// The model files a job's workers need, found as the coordinator finds them: the CLIP towers (and the manifest when
// it is a file rather than compiled in) and each analysis stage's ONNX files, with sizes and sha256 so a worker can
// fetch what it lacks and check what it got. Only files on this list are ever served.
import { statSync } from "node:fs";
import { chooseStageModels, type StageSpec } from "../engine/analysis/open-stages.ts";
import { resolveStageModel } from "../engine/analysis/stage-model.ts";
import { listModels, resolveModel } from "../engine/models.ts";
import { FileDigests } from "./file-digests.ts";
import type { ModelFile, ModelFilesReply } from "./protocol.ts";

/** A listed file and where it is on this machine. */
export interface LocalModelFile extends ModelFile {
  localPath: string;
}

export class JobModelFiles {
  private readonly digests = new FileDigests();
  private readonly reported = new Set<string>();

  constructor(
    private readonly model: string,
    private readonly stages: StageSpec[],
    private readonly dirs: string[],
    private readonly onEvent?: (line: string) => void,
  ) {}

  /** Resolved afresh each time (a few stats), so a model copied in while the job runs is served from then on. */
  async list(): Promise<{ files: LocalModelFile[]; unavailable: ModelFilesReply["unavailable"] }> {
    const found: Found[] = [];
    const unavailable: ModelFilesReply["unavailable"] = [];
    const wanted: [string, () => Promise<Found[]> | Found[]][] = [
      [this.model, () => clipFiles(this.model, this.dirs)],
      ...(await stageModelNames(this.stages)).map((name): [string, () => Found[]] => [name, () => stageFiles(name, this.dirs)]),
    ];
    for (const [name, files] of wanted) {
      try {
        found.push(...(await files()));
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        unavailable.push({ model: name, reason });
        if (!this.reported.has(name)) {
          this.reported.add(name);
          this.onEvent?.(`workers cannot fetch model ${name} from this coordinator: ${reason}`);
        }
      }
    }
    const files = await Promise.all(
      found.map(async (f) => {
        const stats = statSync(f.localPath);
        return { ...f, bytes: stats.size, sha256: await this.digests.sha256(f.localPath, stats) };
      }),
    );
    return { files, unavailable };
  }

  /** The listed file with exactly this relative path, or null: a request's path is compared, never joined. */
  async find(path: string): Promise<LocalModelFile | null> {
    return (await this.list()).files.find((f) => f.path === path) ?? null;
  }
}

type Found = Omit<LocalModelFile, "bytes" | "sha256">;

async function clipFiles(name: string, dirs: string[]): Promise<Found[]> {
  const model = await resolveModel(name, dirs);
  const origin = listModels(dirs).models.find((m) => m.manifest.name === name)?.origin ?? "built-in";
  return [
    // A manifest file may define a model the worker's binary does not know, or override a built-in one.
    ...(origin === "built-in" ? [] : [{ model: name, path: `${name}.json`, localPath: origin }]),
    { model: name, path: `${name}/${model.manifest.image.file}`, localPath: model.imagePath },
    { model: name, path: `${name}/${model.manifest.text.file}`, localPath: model.textPath },
  ];
}

/** The stage models a job's stages load, defaults filled in as the workers fill them. OCR's are bundled in the binary. */
async function stageModelNames(stages: StageSpec[]): Promise<string[]> {
  const chosen = await chooseStageModels(stages, undefined);
  return [...new Set(chosen.flatMap((c) => Object.values(c.models)))];
}

function stageFiles(name: string, dirs: string[]): Found[] {
  const { manifest, paths } = resolveStageModel(name, dirs);
  return Object.entries(manifest.files).map(([role, f]) => ({ model: name, path: `${name}/${f.file}`, localPath: paths[role]! }));
}
