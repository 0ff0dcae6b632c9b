import pkg from "../../../package.json" with { type: "json" };

export async function run(): Promise<number> {
  process.stdout.write(`imgd ${pkg.version} (bun ${Bun.version})\n`);
  return 0;
}
