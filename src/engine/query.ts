// Text and image queries against an index directory: embed the query with the index's own model, then search.
import { ImageEmbedder, TextEmbedder } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { prepareImage } from "./prepare-image.ts";
import { explainMissingStage, stageClauses, type StageFilters } from "./query-filters.ts";
import type { IndexStore, SearchHit } from "./store/index-store.ts";

export interface QueryFilters extends StageFilters {
  offset?: number;
  pathPrefix?: string;
  takenAfter?: string;
  takenBefore?: string;
}

/** `{ filtersOnly: true }` lists the images that pass the filters, without ranking by similarity. */
export type QueryInput =
  | { text: string }
  | { imagePath: string }
  | { imageBytes: Uint8Array }
  | { imageId: number }
  | { filtersOnly: true };

export interface QueryResult {
  hits: SearchHit[];
  timings: { embedMs: number; searchMs: number };
}

/** Embeds one query in a session opened for that one run. */
export async function embedQuery(
  input: Exclude<QueryInput, { filtersOnly: true }>,
  model: ResolvedModel,
  store: IndexStore,
  threads = 1,
) {
  const session = { threads, prepack: false };
  if ("text" in input) {
    const embedder = await TextEmbedder.open(model, session);
    try {
      return await embedder.embed([input.text]);
    } finally {
      await embedder.close();
    }
  }
  if ("imageId" in input) {
    const vector = await store.getEmbedding(input.imageId);
    if (!vector) throw new Error(`image ${input.imageId} is not in the index or has no embedding`);
    return vector;
  }
  const { pixels } = await prepareImage("imagePath" in input ? input.imagePath : input.imageBytes, model.manifest.preprocess);
  const embedder = await ImageEmbedder.open(model, session);
  try {
    return await embedder.embed(pixels, 1);
  } finally {
    await embedder.close();
  }
}

export async function runQuery(
  input: QueryInput,
  k: number,
  filters: QueryFilters,
  model: ResolvedModel,
  store: IndexStore,
  threads = 1,
): Promise<QueryResult> {
  const t0 = performance.now();
  const { has, textIn, person, ...plain } = filters;
  const where = await stageClauses({ has, textIn, person }, (sql, params) => store.read(sql, params));
  if ("filtersOnly" in input) {
    if (where.length === 0 && !plain.pathPrefix && !plain.takenAfter && !plain.takenBefore) {
      throw new Error("a query needs text, an image, or at least one filter");
    }
    const hits = await store.browse(k, { ...plain, where }).catch((e) => Promise.reject(explainMissingStage(e)));
    return { hits, timings: { embedMs: 0, searchMs: performance.now() - t0 } };
  }
  const vector = await embedQuery(input, model, store, threads);
  const t1 = performance.now();
  const excludeIds = "imageId" in input ? [input.imageId] : undefined;
  const hits = await store
    .search(vector, k, { ...plain, where, excludeIds })
    .catch((e) => Promise.reject(explainMissingStage(e)));
  return { hits, timings: { embedMs: t1 - t0, searchMs: performance.now() - t1 } };
}
