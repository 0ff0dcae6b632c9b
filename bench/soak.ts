// Steady load against `imgd serve` for N minutes, watching the server's resident memory: a leak in a cache, the
// batcher or the gate shows up as RSS that keeps growing after warm-up. RSS is sampled every second; growth
// compares the median of the first minute with the median of the last (the JS heap's sawtooth of collections
// would make any two single samples disagree by tens of MB). Prints the per-minute figures, the growth in %
// (goal < 10 %), the peak while serving (goal <= 400 MB), and the status shares.
// Usage: bun bench/soak.ts [--minutes 5] [--concurrency 20] [--vectors 100000] [--dtype f16|f32|i8]   (--minutes 0.5 for a quick look)
import type { VectorDType } from "../src/engine/store/index-store.ts";
import { flag, loadNote, percentile } from "./fixtures.ts";
import { benchIndex, closedLoop, nextQuery, rssOf, rssText, spawnServer, summarise } from "./load.ts";

const minutes = Number(flag("--minutes", "5"));
const concurrency = Number(flag("--concurrency", "20"));
const index = await benchIndex(Number(flag("--vectors", "100000")), flag("--dtype", "i8") as VectorDType);
const server = await spawnServer(index);
try {
  const path = () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`;
  console.log(`soak: ${minutes} min at c=${concurrency}; ${loadNote()}; idle after start: ${rssText(server.pid)}`);
  // A warm-up first, so start-up allocations and the first cache fill are not counted as growth.
  await closedLoop(server.url, concurrency, Math.min(20, minutes * 6), path);
  console.log(`after warm-up: ${rssText(server.pid)}`);
  const samples: { at: number; rss: number }[] = [];
  const t0 = performance.now();
  const sampler = setInterval(() => samples.push({ at: (performance.now() - t0) / 1000, rss: rssOf(server.pid).rss }), 1000);
  const slices = Math.max(1, Math.round(minutes));
  for (let i = 0; i < slices; i++) {
    const r = await closedLoop(server.url, concurrency, (minutes * 60) / slices, path);
    console.log(`slice ${i + 1}/${slices}: ${summarise(r)}  ${rssText(server.pid)}`);
  }
  clearInterval(sampler);
  const window = Math.min(60, (minutes * 60) / 2);
  const median = (from: number, to: number) =>
    percentile(samples.filter((s) => s.at >= from && s.at < to).map((s) => s.rss).sort((a, b) => a - b), 50);
  const end = samples[samples.length - 1]!.at;
  const first = median(0, window);
  const last = median(end - window, end + 1);
  const peak = Math.max(...samples.map((s) => s.rss));
  console.log(
    `RSS median of the first ${window.toFixed(0)} s ${first.toFixed(1)} MiB, of the last ${last.toFixed(1)} MiB: growth ${((100 * (last - first)) / first).toFixed(1)}% (goal < 10%); ` +
      `peak while serving ${peak.toFixed(1)} MiB (goal <= 400 MB = ${(400e6 / 2 ** 20).toFixed(0)} MiB)`,
  );
} finally {
  await server.stop();
}
