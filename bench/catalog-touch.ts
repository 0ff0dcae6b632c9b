// What recording touched or renamed files costs the catalog: Catalog.movePaths against the per-row UPDATE loop it
// replaced (kept here only as the baseline), on the same synthetic catalog, in one run.
//
//   bun bench/catalog-touch.ts [--n 20000] [--dims 512] [--batch 32]
//
// Three cases, each on a fresh catalog of N rows: every row touched (new mtime and ctime, as after `chmod -R`) in one
// call; the same in calls of --batch rows, as `imgd index` writes touches with each batch; every path reversed
// (N/2 swaps) in one call. Both ways must leave the same rows, which is checked.
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { Catalog, type FileMove, type NewImage } from "../src/engine/store/catalog.ts";
import { BENCH_DIR, flag, loadNote, prng, randomUnitVectors } from "./fixtures.ts";

const n = Number(flag("--n", "20000"));
const dims = Number(flag("--dims", "512"));
const batch = Number(flag("--batch", "32"));
const dir = join(BENCH_DIR, "catalog-touch");

const path = (i: number) => `/photos/${String(Math.floor(i / 1000)).padStart(3, "0")}/IMG_${String(i).padStart(6, "0")}.jpg`;

async function freshCatalog(): Promise<{ catalog: Catalog; ids: number[] }> {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const catalog = await Catalog.open(join(dir, "catalog.duckdb"), dims, false);
  const ids: number[] = [];
  const rand = prng(7);
  for (let start = 0; start < n; start += 5000) {
    const count = Math.min(5000, n - start);
    const rows: NewImage[] = Array.from({ length: count }, (_, k) => ({
      path: path(start + k),
      size: 2_000_000 + start + k,
      mtimeMs: 1_700_000_000_000 + start + k,
      ctimeMs: 1_700_000_000_000 + start + k,
      imohash: `hash${start + k}`,
      width: 4000,
      height: 3000,
      takenAt: "2024-06-01T12:00:00",
      cameraMake: "Canon",
      cameraModel: "EOS",
      status: "indexed",
    }));
    ids.push(...(await catalog.addBatch(rows, randomUnitVectors(count, dims, rand))).ids);
  }
  await catalog.checkpoint();
  return { catalog, ids };
}

/** The loop movePaths ran before: park the renamed rows, then one prepared UPDATE per row. */
async function perRowMovePaths(catalog: Catalog, moves: FileMove[]): Promise<void> {
  await catalog.write(async (conn: DuckDBConnection) => {
    const target = new Map(moves.map((m) => [m.id, m.path]));
    const current = (await conn.runAndReadAll(`SELECT id, path FROM images WHERE id IN (${moves.map((m) => m.id).join(",")})`)).getRows();
    const renamed = current.filter((r) => target.get(Number(r[0])) !== r[1]).map((r) => Number(r[0]));
    if (renamed.length > 1) {
      await conn.run(`UPDATE images SET path = chr(0) || 'moving ' || id WHERE id IN (${renamed.join(",")})`);
    }
    const update = await conn.prepare("UPDATE images SET path = $1, size = $2, mtime_ms = $3, ctime_ms = $4 WHERE id = $5");
    for (const m of moves) {
      update.bindVarchar(1, m.path);
      update.bindBigInt(2, BigInt(Math.round(m.size)));
      update.bindDouble(3, m.mtimeMs);
      if (m.ctimeMs === undefined) update.bindNull(4);
      else update.bindDouble(4, m.ctimeMs);
      update.bindBigInt(5, BigInt(m.id));
      await update.run();
    }
    await conn.run("UPDATE catalog_state SET version = version + 1");
  });
}

type Way = (catalog: Catalog, moves: FileMove[]) => Promise<void>;
const ways: [string, Way][] = [
  ["per-row", perRowMovePaths],
  ["bulk", (catalog, moves) => catalog.movePaths(moves)],
];

const cases: { name: string; moves: (ids: number[]) => FileMove[]; chunk: number }[] = [
  {
    name: `touch all ${n}, one call`,
    moves: (ids) => ids.map((id, i) => ({ id, path: path(i), size: 2_000_000 + i, mtimeMs: 1_800_000_000_000 + i, ctimeMs: 1_800_000_000_000 + i })),
    chunk: n,
  },
  {
    name: `touch all ${n}, calls of ${batch}`,
    moves: (ids) => ids.map((id, i) => ({ id, path: path(i), size: 2_000_000 + i, mtimeMs: 1_800_000_000_000 + i, ctimeMs: 1_800_000_000_000 + i })),
    chunk: batch,
  },
  {
    name: `reverse all ${n} paths, one call`,
    moves: (ids) => ids.map((id, i) => ({ id, path: path(n - 1 - i), size: 2_000_000 + i, mtimeMs: 1_800_000_000_000 + i })),
    chunk: n,
  },
];

console.log(`catalog-touch: ${n} rows, ${dims}-d embeddings; ${loadNote()}`);
for (const c of cases) {
  const ms: number[] = [];
  const outcomes: string[] = [];
  for (const [, way] of ways) {
    const { catalog, ids } = await freshCatalog();
    const moves = c.moves(ids);
    const t0 = performance.now();
    for (let i = 0; i < moves.length; i += c.chunk) await way(catalog, moves.slice(i, i + c.chunk));
    ms.push(performance.now() - t0);
    const rows = [...(await catalog.knownFiles()).values()].map((k) => `${k.id} ${k.path} ${k.size} ${k.mtimeMs} ${k.ctimeMs}`);
    outcomes.push(rows.sort().join("\n"));
    await catalog.close();
  }
  if (outcomes[0] !== outcomes[1]) throw new Error(`${c.name}: the bulk movePaths left other rows than the per-row loop`);
  const [perRow, bulk] = ms as [number, number];
  const us = (t: number) => ((t * 1000) / n).toFixed(1).padStart(6);
  console.log(
    `${c.name.padEnd(34)} per-row ${(perRow / 1000).toFixed(2).padStart(6)} s (${us(perRow)} µs/row)   ` +
      `bulk ${(bulk / 1000).toFixed(2).padStart(6)} s (${us(bulk)} µs/row)   ${(perRow / bulk).toFixed(1)}x`,
  );
}
rmSync(dir, { recursive: true, force: true });
