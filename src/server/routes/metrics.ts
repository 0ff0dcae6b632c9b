// GET /metrics in Prometheus text format. The request counters live in the request-metrics middleware; the gauges
// here read engine state at scrape time.
import { Hono } from "hono";
import type { AppDeps } from "../app-deps.ts";
import type { MetricsRegistry } from "../metrics-registry.ts";

export function registerEngineMetrics(m: MetricsRegistry, deps: AppDeps): void {
  const gates = Object.values(deps.gates);
  const sum = (f: (g: (typeof gates)[number]) => number) => () => gates.reduce((n, g) => n + f(g), 0);
  m.gauge("imgd_requests_in_flight", "Requests admitted and running.", sum((g) => g.inFlight));
  m.gauge("imgd_requests_queued", "Requests waiting for a slot.", sum((g) => g.queued));
  m.sampledCounter("imgd_requests_rejected_total", "Requests refused with 429 since start.", sum((g) => g.rejected));
  m.gauge("imgd_search_in_flight_limit", "Searches allowed to run at once, adapted to the latency target.", () => deps.gates.search.limit);
  m.gauge("imgd_search_service_seconds", "Moving average of how long an admitted search holds its slot.", () => deps.gates.search.serviceMs / 1000);
  // From memory: counting in the catalog scans the embedding column on every scrape.
  m.gauge("imgd_index_images", "Images indexed in the catalog.", () => deps.metadata.size);
  m.sampledCounter("imgd_log_lines_dropped_total", "Access-log lines dropped because writing fell behind.", () => deps.log.dropped);
  m.gauge("imgd_js_heap_used_bytes", "JavaScript heap in use (the rest of the RSS is native: vectors, DuckDB, ONNX Runtime).", () => process.memoryUsage().heapUsed);
  m.sampledCounter("imgd_memory_collections_total", "Full collections run because resident memory was above its target.", () => deps.memoryCollections?.() ?? 0);
  m.gauge("imgd_image_tower_loaded", "1 while the image tower is open (from an image query or ingest until it has been idle).", () => (deps.images.loaded ? 1 : 0));
  m.sampledCounter("imgd_image_tower_idle_closes_total", "Times the image tower was closed for being idle.", () => deps.images.idleCloses);
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
