import { join, resolve } from "node:path";
import { exportParquet } from "../../engine/export-parquet.ts";
import { parsePathMaps } from "../../engine/path-map.ts";
import { DEFAULT_INDEX, noArguments, parse } from "../args.ts";
import { UsageError } from "../usage.ts";

/** `imgd export --parquet OUT [--index DIR | --storage DIR] [--path-map FROM=TO]...` */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    parquet: { type: "string" },
    index: { type: "string" },
    storage: { type: "string" },
    "path-map": { type: "string", multiple: true },
  });
  noArguments(positionals, "export", values.parquet ? "--index" : "--parquet");
  if (!values.parquet) throw new UsageError("export needs --parquet OUT");
  const indexDir = resolve(values.index ?? (values.storage ? join(values.storage, "index") : DEFAULT_INDEX));
  const report = await exportParquet(indexDir, resolve(values.parquet), parsePathMaps(values["path-map"] ?? []));
  process.stdout.write(`exported ${report.rows} images (${report.model}, ${report.dims}-d) to ${report.parquet}; metadata ${report.metadata}\n`);
  return 0;
}
