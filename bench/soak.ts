// Steady load against `imgd serve` for N minutes, watching the server's resident memory: a leak in a cache, the
// batcher or the gate shows up as RSS that keeps growing after warm-up. Prints RSS after warm-up, each minute and
// at the end, the growth in % (goal < 10 %), the peak while serving (goal <= 400 MB), and the status shares.
// Usage: bun bench/soak.ts [--minutes 5] [--concurrency 20] [--vectors 100000] [--dtype f32|f16|i8]   (--minutes 0.5 for a quick look)
import type { VectorDType } from "../src/engine/store/index-store.ts";
import { flag, loadNote } from "./fixtures.ts";
import { benchIndex, closedLoop, nextQuery, rssOf, rssText, spawnServer, summarise } from "./load.ts";

const minutes = Number(flag("--minutes", "5"));
const concurrency = Number(flag("--concurrency", "20"));
const index = await benchIndex(Number(flag("--vectors", "100000")), flag("--dtype", "f32") as VectorDType);
const server = await spawnServer(index);
try {
  const path = () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`;
  console.log(`soak: ${minutes} min at c=${concurrency}; ${loadNote()}; idle after start: ${rssText(server.pid)}`);
  // A warm-up first, so start-up allocations and the first cache fill are not counted as growth.
  await closedLoop(server.url, concurrency, Math.min(20, minutes * 6), path);
  const start = rssOf(server.pid).rss;
  let peak = start;
  console.log(`after warm-up: ${rssText(server.pid)}`);
  const slices = Math.max(1, Math.round(minutes));
  for (let i = 0; i < slices; i++) {
    const r = await closedLoop(server.url, concurrency, (minutes * 60) / slices, path);
    peak = Math.max(peak, rssOf(server.pid).rss);
    console.log(`slice ${i + 1}/${slices}: ${summarise(r)}  ${rssText(server.pid)}`);
  }
  const end = rssOf(server.pid).rss;
  const growth = (100 * (end - start)) / start;
  console.log(`RSS start ${start.toFixed(1)} MiB, end ${end.toFixed(1)} MiB, growth ${growth.toFixed(1)}% (goal < 10%); peak while serving ${peak.toFixed(1)} MiB (goal <= 400 MB = ${(400e6 / 2 ** 20).toFixed(0)} MiB)`);
} finally {
  await server.stop();
}
