// Steady load against `imgd serve` for N minutes, watching the server's resident memory: a leak in a cache, the
// batcher or the gate shows up as RSS that keeps growing after warm-up.
// Usage: bun bench/soak.ts [--minutes 5] [--concurrency 20] [--vectors 100000]
import { readFileSync } from "node:fs";
import { flag } from "./fixtures.ts";
import { benchIndex, closedLoop, nextQuery, spawnServer, summarise } from "./load.ts";

function rssMiB(pid: number): number {
  const kb = Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)?.[1]);
  return kb / 1024;
}

const minutes = Number(flag("--minutes", "5"));
const concurrency = Number(flag("--concurrency", "20"));
const index = await benchIndex(Number(flag("--vectors", "100000")));
const server = await spawnServer(index);
try {
  const path = () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`;
  // One warm-up minute fraction first, so start-up allocations and the first cache fill are not counted as growth.
  await closedLoop(server.url, concurrency, Math.min(20, minutes * 6), path);
  const start = rssMiB(server.pid);
  console.log(`soak: ${minutes} min at c=${concurrency}; server RSS after warm-up ${start.toFixed(1)} MiB`);
  const slices = Math.max(1, minutes);
  for (let i = 0; i < slices; i++) {
    const r = await closedLoop(server.url, concurrency, (minutes * 60) / slices, path);
    console.log(`minute ${i + 1}: ${summarise(r)}  rss ${rssMiB(server.pid).toFixed(1)} MiB`);
  }
  const end = rssMiB(server.pid);
  console.log(`RSS start ${start.toFixed(1)} MiB, end ${end.toFixed(1)} MiB, growth ${((100 * (end - start)) / start).toFixed(1)}%`);
} finally {
  await server.stop();
}
