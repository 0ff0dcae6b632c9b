import { expect, test } from "bun:test";
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { makePhotos, MODELS } from "./cluster-harness.ts";

/**
 * `checkShard` on `shard` in a process that may not read it as its owner's umask left it: as root, the check runs as
 * nobody (a coordinator whose root NFS squashes to nobody); as another user, the shard's mode is taken away.
 */
function checkAsOutsider(dir: string, shard: string, mode: number): { state: string; reason?: string } {
  const asRoot = process.getuid?.() === 0;
  chmodSync(shard, asRoot || mode & 0o004 ? mode : 0);
  try {
    const script = join(dir, "check.ts");
    writeFileSync(
      script,
      `const { checkShard } = await import(${JSON.stringify(join(import.meta.dir, "../../src/cluster-net/shard-check.ts"))});\n` +
        `console.log(JSON.stringify(await checkShard(${JSON.stringify(shard)}, [], [])));\n`,
    );
    const asNobody = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const child = Bun.spawnSync([...asNobody, process.execPath, script], { cwd: dir, env: { ...process.env, HOME: dir } });
    return JSON.parse(child.stdout.toString().trim().split("\n").pop() ?? "{}");
  } finally {
    chmodSync(shard, 0o755);
  }
}

test("a shard the coordinator may not read (another user's umask, NFS root_squash) is named with its owner and what to do, not taken for lost", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-shard-perm-"));
  chmodSync(dir, 0o755);
  const photos = await makePhotos(join(dir, "photos"), 3);
  const shard = join(dir, "w-1");
  const model = await resolveModel("test-clip", modelSearchDirs(MODELS));
  const r = await runIndex({ roots: [join(dir, "photos")], indexDir: shard, model, batchSize: 8, threads: 1 });
  expect(r.embedded).toBe(photos.length);
  chmodSync(join(shard, "catalog.duckdb"), 0o644);

  const closed = checkAsOutsider(dir, shard, 0o700);
  expect(closed.state).toBe("denied");
  expect(closed.reason).toContain(`${join(shard, "catalog.duckdb")} cannot be read by this coordinator (uid `);
  expect(closed.reason).toContain("EACCES");
  expect(closed.reason).toContain(`make the shard readable (chmod -R a+rX ${shard})`);
  // What the message says to do is enough: the same outsider then finds the shard whole.
  expect(checkAsOutsider(dir, shard, 0o755)).toEqual({ state: "whole" });
}, 60_000);
