// GET /api/duplicates: exact duplicate groups (imohash confirmed by sha256) and near-duplicate groups (cosine ≥
// near, default per model), with image ids for /api/images/:id/thumb. Computed per request: one kNN pass over the
// index and a full-content hash of only the files that share an imohash.
import { Hono } from "hono";
import { z } from "zod";
import { defaultNearThreshold, exactDuplicateGroups, MIN_NEAR_THRESHOLD, nearDuplicateGroups } from "../../engine/duplicates.ts";
import type { AppDeps } from "../app-deps.ts";
import { timed, type AppEnv } from "../app-env.ts";
import { parseInput } from "../http-error.ts";
import { decimal } from "../schemas.ts";

export const DuplicatesQuery = z.object({
  // Lower thresholds group merely similar photos and cost time quadratic in the index (see MIN_NEAR_THRESHOLD).
  near: z.coerce.number().min(MIN_NEAR_THRESHOLD).max(1).optional()
    .meta({ description: `cosine similarity for near duplicates, from ${MIN_NEAR_THRESHOLD} to 1; default per model` }),
  exact_only: z.enum(["true", "false", "1", "0"]).optional().meta({ description: "skip near duplicates" }),
  limit: decimal(z.coerce.number().int().min(1).max(10_000).default(200)).meta({ description: "groups returned (exact first, then near)" }),
});

const Image = z.object({
  id: z.number().int(),
  path: z.string(),
  thumb: z.string(),
  similarity: z.number().meta({ description: "cosine to the closest other member (1 for identical files)" }),
});

export const DuplicatesResponse = z.object({
  model: z.string(),
  near_threshold: z.number().nullable().meta({ description: "null when exact_only" }),
  threshold_source: z.enum(["model-default", "request"]).nullable(),
  total_groups: z.number().int(),
  groups: z.array(
    z.object({
      kind: z.enum(["exact", "near"]),
      similarity: z.number().meta({ description: "the lowest member similarity in the group" }),
      sha256: z.string().optional().meta({ description: "exact groups: the files' content hash" }),
      size: z.number().int().optional().meta({ description: "exact groups: bytes per file" }),
      images: z.array(Image),
    }),
  ).meta({ description: "exact groups first, then near groups; largest first within each" }),
  imohash_collisions: z.number().int().meta({ description: "files that share an imohash with another but differ in content" }),
  unreadable: z.number().int().meta({ description: "files that could not be read for the full-content hash" }),
});

type DuplicatesBody = z.infer<typeof DuplicatesResponse>;

export function duplicateRoutes(deps: AppDeps) {
  const withThumb = <T extends { id: number }>(image: T) => ({ ...image, thumb: `/api/images/${image.id}/thumb` });
  return new Hono<AppEnv>().get("/", async (c) => {
    const q = parseInput(DuplicatesQuery, c.req.query());
    const model = deps.store.manifest.model.name;
    const exact = await timed(c, "exact", () => exactDuplicateGroups(deps.store));
    const groups: DuplicatesBody["groups"] = exact.groups.map((g) => ({
      kind: "exact",
      similarity: 1,
      sha256: g.sha256,
      size: g.size,
      images: g.images.map((i) => withThumb({ ...i, similarity: 1 })),
    }));
    const nearWanted = q.exact_only !== "true" && q.exact_only !== "1";
    const threshold = nearWanted ? (q.near ?? defaultNearThreshold(model)) : null;
    if (threshold !== null) {
      const near = await timed(c, "near", () => nearDuplicateGroups(deps.store, threshold));
      for (const g of near) {
        groups.push({ kind: "near", similarity: Math.min(...g.images.map((i) => i.similarity)), images: g.images.map(withThumb) });
      }
    }
    c.get("logFields").duplicates = { groups: groups.length };
    const body: DuplicatesBody = {
      model,
      near_threshold: threshold,
      threshold_source: threshold === null ? null : q.near === undefined ? "model-default" : "request",
      total_groups: groups.length,
      groups: groups.slice(0, q.limit),
      imohash_collisions: exact.collisions,
      unreadable: exact.unreadable.length,
    };
    return c.json(body);
  });
}
