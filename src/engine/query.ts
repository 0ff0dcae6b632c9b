// Text and image queries against an index directory: embed the query with the index's own model, then search.
import { ImageEmbedder, TextEmbedder } from "./embed.ts";
import type { ResolvedModel } from "./models.ts";
import { prepareImage } from "./prepare-image.ts";
import type { IndexStore, SearchHit } from "./store/index-store.ts";

export interface QueryFilters {
  offset?: number;
  pathPrefix?: string;
  takenAfter?: string;
  takenBefore?: string;
}

export type QueryInput = { text: string } | { imagePath: string } | { imageBytes: Uint8Array } | { imageId: number };

export interface QueryResult {
  hits: SearchHit[];
  timings: { embedMs: number; searchMs: number };
}

export async function embedQuery(input: QueryInput, model: ResolvedModel, store: IndexStore, threads = 1) {
  if ("text" in input) {
    const embedder = await TextEmbedder.open(model, { threads });
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
  const embedder = await ImageEmbedder.open(model, { threads });
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
): Promise<QueryResult> {
  const t0 = performance.now();
  const vector = await embedQuery(input, model, store);
  const t1 = performance.now();
  const excludeIds = "imageId" in input ? [input.imageId] : undefined;
  const hits = await store.search(vector, k, { ...filters, excludeIds });
  return { hits, timings: { embedMs: t1 - t0, searchMs: performance.now() - t1 } };
}
