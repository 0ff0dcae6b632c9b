// A second coordinator on a share whose file locks stay within one client (sshfs; NFS mounted nolock or
// local_lock=all) gets DuckDB's lock on the ledger as if it were free. The holder file beside the ledger is what
// refuses it there; these tests write it as a coordinator on another host would.
import { beforeAll, expect, test } from "bun:test";
import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { coordinatorHolderPath, ledgerPath } from "../../src/cluster-net/storage-layout.ts";
import { HOLDER_STALE_MS, readHolder } from "../../src/engine/store/holder-file.ts";
import { makePhotos, tempDir } from "./cluster-harness.ts";

let photos: string;
beforeAll(async () => {
  photos = join(tempDir("holder-photos"), "photos");
  await makePhotos(photos, 3);
}, 30_000);

function storageHeldBy(holder: { host: string; pid: number; beatAtMs: number }): string {
  const storage = join(tempDir("holder"), "storage");
  mkdirSync(join(storage, "coordinator"), { recursive: true });
  writeFileSync(coordinatorHolderPath(storage), JSON.stringify(holder));
  return storage;
}

const open = (storage: string) => Coordinator.open({ roots: [photos], storage, model: "test-clip", leaseTtlMs: 60_000 });

test("a coordinator on another host that beat recently holds the storage: a second one is refused, naming it, before the ledger is opened", async () => {
  const storage = storageHeldBy({ host: "other-host", pid: 4242, beatAtMs: Date.now() - 5_000 });
  await expect(open(storage)).rejects.toThrow(
    new RegExp(`^another coordinator \\(pid 4242 on other-host, alive [56] s ago\\) runs the job in ${storage}: stop it first, or give another --storage`),
  );
  expect(existsSync(ledgerPath(storage))).toBe(false);
  expect(readHolder(coordinatorHolderPath(storage))).toMatchObject({ host: "other-host", pid: 4242 });
});

test("a holder that stopped beating, or whose pid no longer runs on this host, is replaced; the holder file goes with the coordinator", async () => {
  const exited = Bun.spawnSync(["true"]).pid;
  for (const gone of [
    { host: "other-host", pid: 4242, beatAtMs: Date.now() - HOLDER_STALE_MS - 1_000 },
    { host: hostname(), pid: exited, beatAtMs: Date.now() },
  ]) {
    const storage = storageHeldBy(gone);
    const c = await open(storage);
    try {
      expect(readHolder(coordinatorHolderPath(storage))).toMatchObject({ host: hostname(), pid: process.pid });
      expect((await c.status()).total).toBe(3);
    } finally {
      await c.close();
    }
    expect(existsSync(coordinatorHolderPath(storage))).toBe(false);
  }
});
