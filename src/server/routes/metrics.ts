// GET /metrics in Prometheus text format. The request counters live in the request-metrics middleware; the gauges
// here read engine state at scrape time.
import { Hono } from "hono";
import type { AppDeps } from "../app-deps.ts";
import type { MetricsRegistry } from "../metrics-registry.ts";

export function registerEngineMetrics(m: MetricsRegistry, deps: AppDeps): void {
  m.gauge("imgd_requests_in_flight", "Requests admitted and running.", () => deps.gate.inFlight);
  m.gauge("imgd_requests_queued", "Requests waiting for a slot.", () => deps.gate.queued);
  m.sampledCounter("imgd_requests_rejected_total", "Requests refused with 429 since start.", () => deps.gate.rejected);
  m.gauge("imgd_index_images", "Images indexed in the catalog.", async () => (await deps.store.stats()).indexed);
  m.sampledCounter("imgd_query_cache_hits_total", "Text queries answered from the embedding cache.", () => deps.queries.cache.hits);
  m.sampledCounter("imgd_query_cache_misses_total", "Text queries that needed the model.", () => deps.queries.cache.misses);
  m.gauge("imgd_query_cache_entries", "Query embeddings cached.", () => deps.queries.cache.size);
  m.sampledCounter("imgd_text_batches_total", "Text-tower runs.", () => deps.textBatcher.batches);
  m.sampledCounter("imgd_text_batched_queries_total", "Texts embedded across all text-tower runs.", () => deps.textBatcher.texts);
  m.sampledCounter("imgd_thumbnail_memory_hits_total", "Thumbnails served from memory.", () => deps.thumbnails.memoryHits);
  m.sampledCounter("imgd_thumbnail_disk_hits_total", "Thumbnails served from the disk cache.", () => deps.thumbnails.diskHits);
  m.sampledCounter("imgd_thumbnails_rendered_total", "Thumbnails rendered.", () => deps.thumbnails.rendered);
}

export function metricsRoutes(registry: MetricsRegistry) {
  return new Hono().get("/metrics", async (c) =>
    c.body(await registry.render(), 200, { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" }),
  );
}
