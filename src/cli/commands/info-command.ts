import { resolve } from "node:path";
import { IndexStore } from "../../engine/store/index-store.ts";
import { DEFAULT_INDEX, noArguments, parse } from "../args.ts";
import { printable } from "../printable.ts";

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { index: { type: "string" }, errors: { type: "boolean" }, json: { type: "boolean" } });
  noArguments(positionals, "info", "--index");
  const dir = resolve(values.index ?? DEFAULT_INDEX);
  const store = await IndexStore.open(dir, { readOnly: true });
  try {
    const stats = await store.stats();
    const failures = values.errors ? await store.failures() : undefined;
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ index: dir, ...stats, manifest: store.manifest, failures })}\n`);
      return 0;
    }
    process.stdout.write(
      [
        `index     ${dir}`,
        `model     ${stats.model} (${stats.dims}-d, ${stats.dtype})`,
        `images    ${stats.indexed} indexed, ${stats.failed} failed, ${stats.total} total`,
        `vectors   ${stats.vectors}`,
        `disk      ${(stats.diskBytes / 2 ** 20).toFixed(1)} MiB`,
      ].join("\n") + "\n",
    );
    if (failures) {
      if (failures.length === 0) process.stdout.write("no errors\n");
      for (const f of failures) {
        // A file decoded from its path has its error begin with that path, which the line shows already.
        const error = f.error.startsWith(`${f.path}: `) ? f.error.slice(f.path.length + 2) : f.error;
        process.stdout.write(`${f.reason.padEnd(16)} ${printable(f.path)}  ${printable(error)}\n`);
      }
    }
    return 0;
  } finally {
    await store.close();
  }
}
