import { resolve } from "node:path";
import { defaultNearThreshold, exactDuplicateGroups, MIN_NEAR_THRESHOLD, nearDuplicateGroups } from "../../engine/duplicates.ts";
import { IndexStore } from "../../engine/store/index-store.ts";
import { DEFAULT_INDEX, noArguments, parse } from "../args.ts";
import { printable } from "../printable.ts";
import { UsageError } from "../usage.ts";

/** `imgd dups [--index DIR] [--near T] [--exact-only] [--json]` */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    index: { type: "string" },
    near: { type: "string" },
    "exact-only": { type: "boolean" },
    json: { type: "boolean" },
  });
  noArguments(positionals, "dups", "--index");
  if (values.near !== undefined && values["exact-only"]) throw new UsageError("--near and --exact-only exclude each other");
  const near = values.near === undefined ? undefined : Number(values.near);
  if (near !== undefined && !(near >= MIN_NEAR_THRESHOLD && near <= 1)) {
    throw new UsageError(
      `--near takes a cosine similarity from ${MIN_NEAR_THRESHOLD} to 1, got "${values.near}" ` +
        `(below ${MIN_NEAR_THRESHOLD} merely similar photos are grouped, and the search grows with the square of the index)`,
    );
  }
  const dir = resolve(values.index ?? DEFAULT_INDEX);
  const store = await IndexStore.open(dir, { readOnly: true });
  try {
    const model = store.manifest.model.name;
    const threshold = near ?? defaultNearThreshold(model);
    const exact = await exactDuplicateGroups(store);
    const nearGroups = values["exact-only"] ? null : await nearDuplicateGroups(store, threshold);
    if (values.json) {
      const nearPart = nearGroups && { threshold, threshold_source: near === undefined ? "model-default" : "flag", groups: nearGroups };
      process.stdout.write(`${JSON.stringify({ index: dir, model, exact, near: nearPart })}\n`);
      return 0;
    }
    const out: string[] = [];
    const images = (groups: { images: unknown[] }[]) => groups.reduce((n, g) => n + g.images.length, 0);
    out.push(`exact duplicates (same imohash and sha256): ${exact.groups.length} groups, ${images(exact.groups)} images`);
    exact.groups.forEach((g, i) => {
      out.push(`  group ${i + 1}: ${g.images.length} copies of ${formatBytes(g.size)}, sha256 ${g.sha256.slice(0, 16)}`);
      for (const image of g.images) out.push(`    ${printable(image.path)}  (id ${image.id})`);
    });
    if (exact.collisions > 0) out.push(`  ${exact.collisions} files share an imohash with another but differ in content: not duplicates`);
    for (const u of exact.unreadable) out.push(`  could not read ${printable(u.path)}: ${printable(u.error)}`);
    if (nearGroups) {
      const source = near === undefined ? `the default for ${model}; change with --near T` : "from --near";
      out.push(`near duplicates (cosine >= ${threshold}, ${source}): ${nearGroups.length} groups, ${images(nearGroups)} images`);
      nearGroups.forEach((g, i) => {
        out.push(`  group ${i + 1}: ${g.images.length} images (similarity to the closest other member)`);
        for (const image of g.images) out.push(`    ${image.similarity.toFixed(4)}  ${printable(image.path)}  (id ${image.id})`);
      });
    }
    process.stdout.write(`${out.join("\n")}\n`);
    return 0;
  } finally {
    await store.close();
  }
}

function formatBytes(n: number): string {
  return n >= 2 ** 20 ? `${(n / 2 ** 20).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}
