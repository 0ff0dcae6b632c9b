// An index on a share whose file locks stay within one client (sshfs; NFS mounted nolock or local_lock=all): DuckDB
// would let a process on another host open its catalog while one writes it. The holder file beside the catalog
// refuses that; these tests write it as a process on another host would.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { CATALOG_HOLDER_FILE, explainCatalogLock } from "../../src/engine/store/catalog.ts";
import { HOLDER_STALE_MS, readHolder } from "../../src/engine/store/holder-file.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";

const MODEL = {
  name: "unit",
  dims: 8,
  preprocess: { size: 224, interpolation: "bicubic" as const, mean: [0, 0, 0] as [number, number, number], std: [1, 1, 1] as [number, number, number] },
};

async function newIndex(): Promise<string> {
  const dir = join(mkdtempSync(join(tmpdir(), "imgd-holder-")), "index");
  await (await IndexStore.open(dir, { model: MODEL })).close();
  return dir;
}

test("an index another host writes (it beat recently) is refused to writers and readers alike, naming that process", async () => {
  const dir = await newIndex();
  const holder = join(dir, CATALOG_HOLDER_FILE);
  writeFileSync(holder, JSON.stringify({ host: "other-host", pid: 4242, beatAtMs: Date.now() - 3_000 }));
  const text = new RegExp(
    `^${join(dir, "catalog.duckdb")} is open for writing in another process \\(PID 4242 on other-host, alive [34] s ago\\), most likely imgd serve or imgd index; stop it first, or search through that server$`,
  );
  await expect(IndexStore.open(dir, { model: MODEL })).rejects.toThrow(text);
  await expect(IndexStore.open(dir, { readOnly: true })).rejects.toThrow(text);
  expect(readHolder(holder)).toMatchObject({ host: "other-host", pid: 4242 });
});

test("a writer names itself beside the catalog while it has it open, in one file however often this process opens it, and removes it when done", async () => {
  const dir = await newIndex();
  const holder = join(dir, CATALOG_HOLDER_FILE);
  expect(existsSync(holder)).toBe(false);
  const writer = await IndexStore.open(dir, { model: MODEL });
  expect(readHolder(holder)).toMatchObject({ host: hostname(), pid: process.pid });
  // This process reads what it writes: not refused by its own claim.
  const reader = await IndexStore.open(dir, { readOnly: true });
  await reader.close();
  expect(existsSync(holder)).toBe(true);
  await writer.close();
  expect(existsSync(holder)).toBe(false);
});

test("a holder that stopped beating, or whose pid no longer runs on this host, is taken for gone", async () => {
  const exited = Bun.spawnSync(["true"]).pid;
  for (const gone of [
    { host: "other-host", pid: 4242, beatAtMs: Date.now() - HOLDER_STALE_MS - 1_000 },
    { host: hostname(), pid: exited, beatAtMs: Date.now() },
  ]) {
    const dir = await newIndex();
    writeFileSync(join(dir, CATALOG_HOLDER_FILE), JSON.stringify(gone));
    await (await IndexStore.open(dir, { readOnly: true })).close();
    const store = await IndexStore.open(dir, { model: MODEL });
    expect(readHolder(join(dir, CATALOG_HOLDER_FILE))).toMatchObject({ host: hostname(), pid: process.pid });
    await store.close();
  }
});

test("a filesystem that refuses locks (NFSv3 without lockd: ENOLCK) is named as the cause, not taken for another process holding the catalog", () => {
  const path = "/mnt/nfs/index/catalog.duckdb";
  // DuckDB's messages (local_file_system.cpp): the system's reason when F_GETLK cannot name a holder, else the holder.
  const refused = new Error(`IO Error: Could not set lock on file "${path}": No locks available. See also https://duckdb.org/docs/connect/concurrency`);
  expect((explainCatalogLock(path, refused) as Error).message).toBe(
    `${path} cannot be locked on this filesystem (No locks available); DuckDB locks it to keep a second writer out. ` +
      "On NFS, mount it with working locks (NFSv4, or NFSv3 with rpc.statd and lockd on both ends), or keep it on a local disk",
  );
  const held = new Error(`IO Error: Could not set lock on file "${path}": Conflicting lock is held in /usr/local/bin/imgd (PID 77) by user me. See also https://duckdb.org/docs/connect/concurrency`);
  expect((explainCatalogLock(path, held) as Error).message).toBe(
    `${path} is open for writing in another process (PID 77), most likely imgd serve or imgd index; stop it first, or search through that server`,
  );
  const other = new Error(`IO Error: Cannot open file "${path}": Permission denied`);
  expect(explainCatalogLock(path, other)).toBe(other);
});
