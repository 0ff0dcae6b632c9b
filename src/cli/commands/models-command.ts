import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { listStageModels, locateStageModel } from "../../engine/analysis/stage-model-list.ts";
import { builtInStageManifests } from "../../engine/analysis/stage-model.ts";
import { pullModel, pullModelFiles, type PullProgress } from "../../engine/model-pull.ts";
import { findManifest, listModels, modelSearchDirs, resolveModel, verifyFiles, verifyModel } from "../../engine/models.ts";
import { parse } from "../args.ts";
import { UsageError } from "../usage.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    models: { type: "string" },
    json: { type: "boolean" },
    to: { type: "string" },
  });
  const [action, name, ...extra] = positionals;
  // One model per verify or pull: a second name was ignored, and a user took its silence for a pass.
  if (extra.length > 0) throw new UsageError(`models ${action} takes one NAME, got "${positionals.slice(1).join(" ")}"`);
  const dirs = modelSearchDirs(values.models);
  const print = (obj: unknown, text: string) =>
    process.stdout.write(values.json ? `${JSON.stringify(obj)}\n` : `${text}\n`);

  if ((action === "verify" || action === "pull") && name && !stageManifest(name)) {
    const clip = listModels(dirs).models.map((m) => m.manifest.name);
    if (!clip.includes(name)) {
      throw new Error(`unknown model "${name}"; known models: ${[...clip, ...builtInStageManifests().map((m) => m.name)].join(", ")}`);
    }
  }
  switch (action) {
    case "list":
    case undefined: {
      const { models, invalid } = listModels(dirs);
      const rows = models.map((m) => {
        const present = m.imagePath && m.textPath ? "ready" : "not downloaded";
        return `${m.manifest.name.padEnd(16)} ${`${m.manifest.dims}-d clip`.padEnd(13)} ${present.padEnd(15)} ${m.manifest.description}`;
      });
      const stageModels = listStageModels(dirs);
      for (const m of stageModels) {
        const present = m.dir ? "ready" : "not downloaded";
        rows.push(`${m.manifest.name.padEnd(16)} ${m.manifest.task.padEnd(13)} ${present.padEnd(15)} ${m.manifest.description}`);
      }
      for (const bad of invalid) rows.push(`invalid manifest ${bad.path}: ${bad.error}`);
      print({ models, stageModels, invalid, searched: dirs }, [...rows, `searched: ${dirs.join(", ")}`].join("\n"));
      return 0;
    }
    case "verify": {
      if (!name) throw new UsageError("models verify needs a model NAME");
      const stage = stageManifest(name);
      const files = stage
        ? await verifyFiles(Object.entries(locateStageModel(name, dirs).paths).map(([role, path]) => [role, path, stage.files[role]?.sha256] as const))
        : await verifyModel(await resolveModel(name, dirs));
      print(files, files.map((f) => `${f.status.padEnd(9)} ${f.tower.padEnd(6)} ${f.path}  sha256 ${f.actual}`).join("\n"));
      return files.some((f) => f.status === "mismatch") ? 1 : 0;
    }
    case "pull": {
      if (!name) throw new UsageError("models pull needs a model NAME");
      const dest = resolve(values.to ?? values.models ?? join(homedir(), ".cache", "imgd", "models"));
      const stage = stageManifest(name);
      const clip = stage ? null : findManifest(name, dirs);
      const manifest = stage ?? clip!;
      const files = stage ? Object.values(stage.files) : [clip!.image, clip!.text];
      // Generated, bundled or licence-restricted files have no URL: there is nothing to pull if they are here already.
      if (files.some((f) => !f.url)) {
        const found = await presentFiles(name, dirs, stage !== null);
        if (!found) throw new Error(`model ${name} has no download URL; get it with: ${manifest.generate ?? manifest.source}`);
        print(found.map((path) => ({ path, alreadyPresent: true })), found.map((path) => `present  ${path}`).join("\n"));
        return 0;
      }
      const onProgress = (p: PullProgress) => {
        if (!values.json && process.stderr.isTTY) {
          const pct = p.total ? ` ${((100 * p.received) / p.total).toFixed(1)}%` : "";
          process.stderr.write(`\r\x1b[2K${p.file} ${(p.received / 2 ** 20).toFixed(1)} MiB${pct}`);
        }
      };
      const pulled = clip ? await pullModel(clip, dest, { onProgress }) : await pullModelFiles(name, files, dest, { onProgress });
      if (!values.json && process.stderr.isTTY) process.stderr.write("\n");
      print(
        pulled,
        pulled.map((f) => `${f.alreadyPresent ? "present " : "pulled  "} ${f.path}${f.verified ? " (sha256 verified)" : ""}`).join("\n"),
      );
      return 0;
    }
    default:
      throw new UsageError(`unknown models action "${action}" (list, verify, pull)`);
  }
}

/** The files of a model that has them on this machine, or null. */
async function presentFiles(name: string, dirs: string[], stage: boolean): Promise<string[] | null> {
  try {
    if (stage) return Object.values(locateStageModel(name, dirs).paths);
    const model = await resolveModel(name, dirs);
    return [model.imagePath, model.textPath];
  } catch {
    return null;
  }
}

/** A face, object or OCR model's manifest (listStageModels has registered them all), or null for a CLIP model. */
function stageManifest(name: string) {
  return builtInStageManifests().find((m) => m.name === name) ?? null;
}
