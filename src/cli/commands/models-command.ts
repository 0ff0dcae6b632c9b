import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { listStageModels } from "../../engine/analysis/stage-model-list.ts";
import { pullModel } from "../../engine/model-pull.ts";
import { findManifest, listModels, modelSearchDirs, resolveModel, verifyModel } from "../../engine/models.ts";
import { parse } from "../args.ts";
import { UsageError } from "../usage.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    models: { type: "string" },
    json: { type: "boolean" },
    to: { type: "string" },
  });
  const [action, name] = positionals;
  const dirs = modelSearchDirs(values.models);
  const print = (obj: unknown, text: string) =>
    process.stdout.write(values.json ? `${JSON.stringify(obj)}\n` : `${text}\n`);

  switch (action) {
    case "list":
    case undefined: {
      const { models, invalid } = listModels(dirs);
      const rows = models.map((m) => {
        const present = m.imagePath && m.textPath ? "ready" : "not downloaded";
        return `${m.manifest.name.padEnd(16)} ${String(m.manifest.dims).padStart(4)}-d  ${present.padEnd(15)} ${m.manifest.description}`;
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
      const files = await verifyModel(await resolveModel(name, dirs));
      print(files, files.map((f) => `${f.status.padEnd(9)} ${f.tower.padEnd(6)} ${f.path}  sha256 ${f.actual}`).join("\n"));
      return files.some((f) => f.status === "mismatch") ? 1 : 0;
    }
    case "pull": {
      if (!name) throw new UsageError("models pull needs a model NAME");
      const dest = resolve(values.to ?? values.models ?? join(homedir(), ".cache", "imgd", "models"));
      const pulled = await pullModel(findManifest(name, dirs), dest, {
        onProgress: (p) => {
          if (!values.json && process.stderr.isTTY) {
            const pct = p.total ? ` ${((100 * p.received) / p.total).toFixed(1)}%` : "";
            process.stderr.write(`\r\x1b[2K${p.file} ${(p.received / 2 ** 20).toFixed(1)} MiB${pct}`);
          }
        },
      });
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
