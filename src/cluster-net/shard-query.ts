// Queries across a job's output: the merged index once the job is merged, before that every shard that can be opened
// (a shard whose worker is still writing is locked and skipped) and the index of an earlier merge (a re-run's shards
// hold only what changed since), top-k merged by score, one hit per path.
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { TextEmbedder } from "../engine/embed.ts";
import { modelSearchDirs, resolveModel, type ResolvedModel } from "../engine/models.ts";
import { toCanonicalPath, type PathMapping } from "../engine/path-map.ts";
import { IndexStore, type SearchHit } from "../engine/store/index-store.ts";
import type { Coordinator } from "./coordinator.ts";
import { mergedIndexDir, SHARDS_DIR } from "./storage-layout.ts";

export interface ShardHit extends SearchHit {
  /** Which shard answered, or "index" for the merged index. */
  source: string;
}

export interface ShardSearch {
  hits: ShardHit[];
  /** Shards that could not be opened, with why. */
  skipped: { shard: string; reason: string }[];
}

/** Searches each shard for `k`, keeps the best hit per canonical path, returns the top `k` by score. */
export async function searchShards(
  shards: { name: string; dir: string; pathMap?: PathMapping[] }[],
  vector: Float32Array,
  k: number,
): Promise<ShardSearch> {
  const best = new Map<string, ShardHit>();
  const skipped: ShardSearch["skipped"] = [];
  for (const shard of shards) {
    let store: IndexStore;
    try {
      store = await IndexStore.open(shard.dir, { readOnly: true, verifyChecksum: false });
    } catch (err) {
      skipped.push({ shard: shard.name, reason: err instanceof Error ? err.message.split("\n")[0]! : String(err) });
      continue;
    }
    try {
      for (const hit of await store.search(vector, k)) {
        const path = toCanonicalPath(hit.path, shard.pathMap ?? []);
        const prior = best.get(path);
        if (!prior || prior.score < hit.score) best.set(path, { ...hit, path, source: shard.name });
      }
    } finally {
      await store.close();
    }
  }
  const hits = [...best.values()].sort((a, b) => b.score - a.score).slice(0, k);
  return { hits, skipped };
}

export function listShards(storage: string): { name: string; dir: string }[] {
  const root = join(storage, SHARDS_DIR);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => ({ name: d.name, dir: join(root, d.name) }))
    .sort((a, b) => a.name.localeCompare(b.name));
}

export class ShardQuery {
  private model: Promise<ResolvedModel> | null = null;
  private embedder: Promise<TextEmbedder> | null = null;
  /** The merged index as this process serves it (`--serve`): searched as it is, never opened a second time. */
  servedIndex: (() => Promise<IndexStore | undefined>) | null = null;

  constructor(
    private readonly coordinator: Coordinator,
    private readonly modelsDir?: string,
  ) {}

  async text(text: string, k: number): Promise<ShardSearch & { from: "index" | "shards" }> {
    const model = await (this.model ??= resolveModel(this.coordinator.opts.model, modelSearchDirs(this.modelsDir)));
    const embedder = await (this.embedder ??= TextEmbedder.open(model, { threads: 1 }));
    const vector = await embedder.embed([text]);
    const storage = this.coordinator.opts.storage;
    const merged = mergedIndexDir(storage);
    if ((await this.coordinator.status()).phase === "merged" && existsSync(merged)) {
      const served = await this.servedIndex?.();
      if (served) return { hits: (await served.search(vector, k)).map((h) => ({ ...h, source: "index" })), skipped: [], from: "index" };
      const r = await searchShards([{ name: "index", dir: merged }], vector, k);
      return { ...r, from: "index" };
    }
    const workers = await this.coordinator.ledger.workers();
    const shards = [
      ...(existsSync(merged) ? [{ name: "index", dir: merged }] : []),
      ...listShards(storage).map((s) => ({ ...s, pathMap: workers.find((w) => w.id === s.name)?.info.pathMap })),
    ];
    return { ...(await searchShards(shards, vector, k)), from: "shards" };
  }

  async close(): Promise<void> {
    await (await this.embedder?.catch(() => null))?.close();
  }
}
