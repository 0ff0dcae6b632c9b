// A cluster re-run's merge against the first one: `--rows` synthetic rows in 4 worker shards, then a re-run that
// replaced `--changed` of them. Prints the first merge, the re-run's merge as it was done before merged shards were
// deleted (every shard read again, the index rebuilt), and as it is now (the new shard onto a copy of the index).
//   bun bench/merge-rerun.ts [--rows 20000] [--changed 20] [--dims 512]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { mergeShards, type ShardSource } from "../src/engine/store/merge-shards.ts";
import { IndexStore, type NewImage } from "../src/engine/store/index-store.ts";
import { flag, loadNote, prng, randomUnitVectors, testClipModel } from "./fixtures.ts";

const rows = Number(flag("--rows", "20000"));
const changed = Number(flag("--changed", "20"));
const dims = Number(flag("--dims", "512"));
const m = (await testClipModel()).manifest;
const model = { name: `bench-${dims}`, dims, preprocess: m.preprocess, tokenizer: m.tokenizer };
const root = mkdtempSync(join(tmpdir(), "imgd-bench-merge-"));
const rand = prng(rows);
const path = (i: number) => `/bench/photos/${String(Math.floor(i / 1000)).padStart(4, "0")}/IMG_${i}.jpg`;

async function shard(name: string, ids: number[]): Promise<string> {
  const dir = join(root, "shards", name);
  const store = await IndexStore.open(dir, { model });
  for (let start = 0; start < ids.length; start += 5000) {
    const part = ids.slice(start, start + 5000);
    const batch: NewImage[] = part.map((i) => ({
      path: path(i), size: 2_000_000 + i, mtimeMs: 1_700_000_000_000 + i + (name === "rerun" ? 1 : 0), imohash: `h${i}`,
      width: 3000, height: 2000, takenAt: null, cameraMake: null, cameraModel: null, status: "indexed",
    }));
    await store.addBatch(batch, randomUnitVectors(part.length, dims, rand));
  }
  await store.close();
  return dir;
}

const all = Array.from({ length: rows }, (_, i) => i);
const quarter = Math.ceil(rows / 4);
const firstShards = await Promise.all([0, 1, 2, 3].map((q) => shard(`w-${q + 1}`, all.slice(q * quarter, (q + 1) * quarter))));
const redone = new Set(all.filter((i) => i % Math.floor(rows / changed) === 0).slice(0, changed).map(path));
const rerunShard = await shard("rerun", [...redone].map((p) => Number(/IMG_(\d+)/.exec(p)![1])));
const everything = (dir: string): ShardSource => ({ dir, accept: (p) => p });
const index = join(root, "index");

const first = await mergeShards(firstShards.map(everything), index);
// Before: every run's shard read again, the old rows of the redone files left out, the index built anew.
const before = await mergeShards(
  [...firstShards.map((dir) => ({ dir, accept: (p: string) => (redone.has(p) ? null : p) })), everything(rerunShard)],
  join(root, "index-before"),
);
const now = await mergeShards([everything(rerunShard)], index, { keep: (p) => !redone.has(p) });
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
console.log(`${rows} rows x ${dims} dims, ${changed} replaced on the re-run (${loadNote()})`);
console.log(`first merge (4 shards)             ${s(first.wallMs)}  ${first.indexed} indexed`);
console.log(`re-run, every shard merged again   ${s(before.wallMs)}  ${before.indexed} indexed`);
console.log(`re-run, new shard onto the index   ${s(now.wallMs)}  ${now.indexed} indexed (${now.kept} kept)`);
rmSync(root, { recursive: true, force: true });
