// GET /api/duplicates: exact duplicate groups (imohash confirmed by sha256) and near-duplicate groups (cosine ≥
// near, default per model), with image ids for /api/images/:id/thumb: one kNN pass over the index and a
// full-content hash of only the files that share an imohash, kept for later requests until the catalog changes.
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

/** Reports kept: each threshold asked for, until the catalog is written or they are REPORT_TTL_MS old. */
const REPORTS_KEPT = 4;
/** Files can change on disk without a catalog write (the exact groups read them): a report is redone after this. */
const REPORT_TTL_MS = 10 * 60_000;

type Report = Omit<DuplicatesBody, "groups" | "total_groups"> & { groups: DuplicatesBody["groups"] };

export function duplicateRoutes(deps: AppDeps) {
  const withThumb = <T extends { id: number }>(image: T) => ({ ...image, thumb: `/api/images/${image.id}/thumb` });
  // At 100K images a near-duplicate pass takes about a minute: requests for the same report, at once or later,
  // share one computation instead of each starting its own (two of them held both of ingest's slots).
  const reports = new Map<string, { writes: number; at: number; report: Promise<Report> }>();

  const compute = async (threshold: number | null, time: <T>(stage: string, work: () => Promise<T>) => Promise<T>): Promise<Report> => {
    const model = deps.store.manifest.model.name;
    const exact = await time("exact", () => exactDuplicateGroups(deps.store));
    const groups: DuplicatesBody["groups"] = exact.groups.map((g) => ({
      kind: "exact",
      similarity: 1,
      sha256: g.sha256,
      size: g.size,
      images: g.images.map((i) => withThumb({ ...i, similarity: 1 })),
    }));
    if (threshold !== null) {
      const near = await time("near", () => nearDuplicateGroups(deps.store, threshold));
      for (const g of near) {
        groups.push({ kind: "near", similarity: Math.min(...g.images.map((i) => i.similarity)), images: g.images.map(withThumb) });
      }
    }
    return {
      model,
      near_threshold: threshold,
      threshold_source: null,
      groups,
      imohash_collisions: exact.collisions,
      unreadable: exact.unreadable.length,
    };
  };

  return new Hono<AppEnv>().get("/", async (c) => {
    const q = parseInput(DuplicatesQuery, c.req.query());
    const nearWanted = q.exact_only !== "true" && q.exact_only !== "1";
    const threshold = nearWanted ? (q.near ?? defaultNearThreshold(deps.store.manifest.model.name)) : null;
    const key = String(threshold);
    const writes = deps.store.writeCount;
    let kept = reports.get(key);
    if (!kept || kept.writes !== writes || performance.now() - kept.at > REPORT_TTL_MS) {
      const report = compute(threshold, (stage, work) => timed(c, stage, work));
      kept = { writes, at: performance.now(), report };
      reports.delete(key);
      reports.set(key, kept);
      for (const oldest of reports.keys()) if (reports.size > REPORTS_KEPT) reports.delete(oldest);
      // A failed report is not kept: the next request tries again.
      report.catch(() => {
        if (reports.get(key)?.report === report) reports.delete(key);
      });
    } else {
      c.get("logFields").duplicates_cached = true;
    }
    const report = await kept.report;
    c.get("logFields").duplicates = { groups: report.groups.length };
    const body: DuplicatesBody = {
      ...report,
      threshold_source: threshold === null ? null : q.near === undefined ? "model-default" : "request",
      total_groups: report.groups.length,
      groups: report.groups.slice(0, q.limit),
    };
    return c.json(body);
  });
}
