// The shared storage as another user sees it: a coordinator and its workers need not run as the same uid, and NFS
// root_squash makes root nobody. What one writes with its umask the other may not read or write.
import { expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { makePhotos, MODELS } from "./cluster-harness.ts";

const asRoot = process.getuid?.() === 0;

/**
 * Runs `call` (an expression over `m`, the module at `module`) in a process that is not `dir`'s owner, with `dir` at
 * `mode` meanwhile: as root, the process runs as nobody; as another user, `dir`'s owner gets what others get.
 * Returns its JSON result.
 */
function asOutsider(workDir: string, module: string, call: string, dir: string, mode: number): unknown {
  chmodSync(dir, outsiderMode(mode));
  try {
    const script = join(workDir, "outsider.ts");
    writeFileSync(
      script,
      `const m = await import(${JSON.stringify(join(import.meta.dir, "../../src/cluster-net", module))});\n` +
        `console.log(JSON.stringify(await ${call}));\n`,
    );
    const asNobody = asRoot ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
    const child = Bun.spawnSync([...asNobody, process.execPath, script], { cwd: workDir, env: { ...process.env, HOME: workDir } });
    return JSON.parse(child.stdout.toString().trim().split("\n").pop() || "null");
  } finally {
    chmodSync(dir, 0o755);
  }
}

function outsiderMode(mode: number): number {
  return asRoot ? mode : (mode & ~0o700) | ((mode & 0o007) << 6);
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

  const check = `m.checkShard(${JSON.stringify(shard)}, [], [])`;
  const closed = asOutsider(dir, "shard-check.ts", check, shard, 0o700) as { state: string; reason: string };
  expect(closed.state).toBe("denied");
  expect(closed.reason).toContain(`${join(shard, "catalog.duckdb")} cannot be read by this coordinator (uid `);
  expect(closed.reason).toContain("EACCES");
  expect(closed.reason).toContain(`make the shard readable (chmod -R a+rX ${shard})`);
  // What the message says to do is enough: the same outsider then finds the shard whole.
  expect(asOutsider(dir, "shard-check.ts", check, shard, 0o755)).toEqual({ state: "whole" });
}, 60_000);

test("a worker that may not write in the coordinator's shards directory is told at registration whose it is and what to do", () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-shards-perm-"));
  chmodSync(dir, 0o755);
  const shards = join(dir, "shards");
  mkdirSync(shards);
  const check = `m.shardsDirProblem(${JSON.stringify(shards)})`;
  const problem = asOutsider(dir, "worker-checks.ts", check, shards, 0o755) as string;
  expect(problem).toStartWith("this worker (uid ");
  expect(problem).toContain(`cannot write its shard in ${shards}: EACCES; ${shards} is owned by uid ${process.getuid?.()}, mode 0${outsiderMode(0o755).toString(8)}`);
  expect(problem).toContain("chmod 1777");
  // The probe leaves nothing behind, and a directory the worker may write passes.
  expect(asOutsider(dir, "worker-checks.ts", check, shards, 0o1777)).toBeNull();
  expect(readdirSync(shards)).toEqual([]);
});

test("a coordinator that may not write its --storage (made by another user, or root squashed to nobody) says whose it is before writing anything", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-storage-perm-"));
  chmodSync(dir, 0o755);
  const photos = join(dir, "photos");
  await makePhotos(photos, 2);
  const storage = join(dir, "storage");
  mkdirSync(storage);
  const open = `m.Coordinator.open({ roots: [${JSON.stringify(photos)}], storage: ${JSON.stringify(storage)}, model: "test-clip", leaseTtlMs: 60000 }).then(() => "opened", (e) => e.message)`;
  const refused = asOutsider(dir, "coordinator.ts", open, storage, 0o755) as string;
  expect(refused).toStartWith("this coordinator (uid ");
  expect(refused).toContain(`cannot write in ${storage}: EACCES; ${storage} is owned by uid ${process.getuid?.()}, mode 0${outsiderMode(0o755).toString(8)}. Give --storage a directory this user may write`);
  expect(readdirSync(storage)).toEqual([]);
});
