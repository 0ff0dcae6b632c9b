// `imgd serve` on a large library: start-up phases, RSS, and per-request latency of each kind of request at c=10,
// to find what costs time in proportion to the index (a catalog scan or a JS loop over every row per request).
// Usage: bun bench/serve-scale.ts [--vectors 100000] [--seconds 3] [--concurrency 10] [--only text,prefix-0.1%,...]
//                                 [--duplicates yes] [--binary dist/imgd]
// The index is load.ts's (random unit vectors, test-clip, i8), copied once to .bench/scale-N-i8 and given what
// filters need: paths under /bench/photos/ (90 % of the folders) and /bench/other/ (10 %), 1000 photos a folder;
// dates in 2019 for 0.1 % of rows (2023 for the rest); object labels cat (0.1 %), car (10 %) and person (90 %);
// and the first rows pointed at the bundled photos so /thumb has files to render.
import { cpSync, existsSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { OBJECTS_DDL } from "../src/engine/objects/objects-table.ts";
import { MetadataCache } from "../src/engine/store/metadata-cache.ts";
import { IndexStore } from "../src/engine/store/index-store.ts";
import { BENCH_DIR, flag, loadNote, percentile, PHOTOS } from "./fixtures.ts";
import { benchIndex, nextQuery, rssOf, rssText, spawnServer } from "./load.ts";

/** load.ts's index of `count` vectors with the rows filters need, built once. */
async function scaleIndex(count: number): Promise<string> {
  const dir = join(BENCH_DIR, `scale-${count}-i8`);
  if (existsSync(join(dir, "done"))) return dir;
  const base = await benchIndex(count, "i8");
  rmSync(dir, { recursive: true, force: true });
  cpSync(base, dir, { recursive: true, filter: (src) => !/(done|holder\.json|uploads)$/.test(src) });
  const store = await IndexStore.open(dir);
  const folders = Math.ceil(count / 1000);
  const photos = readdirSync(PHOTOS).filter((f) => /\.(jpe?g|png)$/i.test(f)).slice(0, 8);
  await store.ensureTables(OBJECTS_DDL);
  await store.writeRows(async (conn) => {
    // The last 10 % of load.ts's folders (1000 photos each) move to /bench/other/: a path is rewritten whole (with its
    // embedding: the column is indexed), so only those.
    const moved = Math.floor(folders * 0.9);
    await conn.run(`UPDATE images SET path = replace(path, '/bench/photos/', '/bench/other/')
      WHERE path >= '/bench/photos/${String(moved).padStart(3, "0")}/' AND path < '/bench/photos0'`);
    await conn.run("UPDATE images SET taken_at = TIMESTAMP '2019-05-05 10:00:00' WHERE id % 1000 = 5");
    for (const [label, every] of [["cat", 1000], ["car", 10]] as const) {
      await conn.run(`INSERT INTO objects SELECT id, '${label}', 0, 0.9, 0, 0, 1, 1 FROM images WHERE id % ${every} = 3`);
    }
    await conn.run("INSERT INTO objects SELECT id, 'person', 0, 0.9, 0, 0, 1, 1 FROM images WHERE id % 10 <> 0");
    for (const [i, name] of photos.entries()) await conn.run(`UPDATE images SET path = '${join(PHOTOS, name)}' WHERE id = ${i + 1}`);
  });
  await store.checkpoint();
  await store.close();
  await Bun.write(join(dir, "done"), "");
  return dir;
}

/** What `imgd serve` does before it listens, phase by phase, in this process (the server does the same, in order). */
async function startPhases(dir: string): Promise<string> {
  const t0 = performance.now();
  const store = await IndexStore.open(dir);
  const t1 = performance.now();
  await store.folders();
  const t2 = performance.now();
  const cache = await MetadataCache.load(store);
  const t3 = performance.now();
  await store.close();
  const s = (a: number, b: number) => `${((b - a) / 1000).toFixed(2)} s`;
  return `index open (catalog + vectors) ${s(t0, t1)}, folders ${s(t1, t2)}, metadata cache load ${s(t2, t3)} (${cache.size} rows)`;
}

interface Case {
  name: string;
  /** A path, or a path and a JSON body to POST. */
  request: () => string | [string, unknown];
}

function cases(count: number): Case[] {
  const q = () => `q=${encodeURIComponent(nextQuery())}`;
  const search = (extra: string) => () => `/api/search?${q()}&k=20${extra}`;
  const randomId = () => 1 + Math.floor(Math.random() * count);
  const last = String(Math.ceil(count / 1000) - 1).padStart(3, "0");
  return [
    { name: "text", request: search("") },
    { name: "prefix-0.1%", request: search(`&path_prefix=/bench/other/${last}/`) },
    { name: "prefix-10%", request: search("&path_prefix=/bench/other/") },
    { name: "prefix-90%", request: search("&path_prefix=/bench/photos/") },
    { name: "date-0.1%", request: search("&after=2019-01-01&before=2020-01-01") },
    { name: "date-89%", request: search("&after=2023-02-01") },
    { name: "has-cat-0.1%", request: search("&has=cat") },
    { name: "has-car-10%", request: search("&has=car") },
    { name: "has-person-90%", request: search("&has=person") },
    { name: "offset-5000", request: search("&offset=5000") },
    { name: "k-1000", request: () => `/api/search?${q()}&k=1000` },
    { name: "browse-prefix-0.1%", request: () => `/api/search?path_prefix=/bench/other/${last}/&k=20` },
    { name: "browse-prefix-90%", request: () => `/api/search?path_prefix=/bench/photos/&k=20` },
    { name: "more-like-this", request: () => ["/api/search", { image_id: randomId(), k: 20 }] },
    { name: "image", request: () => `/api/images/${randomId()}` },
    { name: "thumb", request: () => `/api/images/${1 + Math.floor(Math.random() * 8)}/thumb` },
    { name: "metrics", request: () => "/metrics" },
    { name: "openapi", request: () => "/openapi.json" },
    { name: "persons", request: () => "/api/persons" },
  ];
}

/** `concurrency` clients back to back for `seconds`; latencies of all answers and the statuses seen. */
async function closedLoop(url: string, c: Case, concurrency: number, seconds: number) {
  const ms: number[] = [];
  const statuses = new Map<number, number>();
  const deadline = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const r = c.request();
        const t0 = performance.now();
        const res = await (typeof r === "string"
          ? fetch(url + r)
          : fetch(url + r[0], { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(r[1]) }));
        await res.arrayBuffer();
        ms.push(performance.now() - t0);
        statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      }
    }),
  );
  return { ms: ms.sort((a, b) => a - b), statuses };
}

if (import.meta.main) {
  const count = Number(flag("--vectors", "100000"));
  const seconds = Number(flag("--seconds", "3"));
  const concurrency = Number(flag("--concurrency", "10"));
  const only = flag("--only", "").split(",").filter(Boolean);
  const dir = await scaleIndex(count);
  console.log(`${count} vectors (test-clip, i8) at ${dir}; ${loadNote()}`);
  console.log(await startPhases(dir));
  const t0 = performance.now();
  const server = await spawnServer(dir);
  console.log(`imgd serve: spawn to ready ${((performance.now() - t0) / 1000).toFixed(2)} s; at rest ${rssText(server.pid)}`);
  try {
    const f = (v: number) => (v < 10 ? v.toFixed(2) : v.toFixed(1)).padStart(8);
    for (const c of cases(count).filter((c) => only.length === 0 || only.includes(c.name))) {
      // One request first, alone: a case's first answer may fill a cache (a label filter's ids, thumbnails, the OpenAPI document).
      const first = (await closedLoop(server.url, c, 1, 0.001)).ms[0]!;
      const { ms, statuses } = await closedLoop(server.url, c, concurrency, seconds);
      const codes = [...statuses].map(([s, n]) => `${s}x${n}`).join(" ");
      console.log(`${c.name.padEnd(20)} first ${f(first)} ms, then c=${concurrency} n=${String(ms.length).padStart(5)}  p50 ${f(percentile(ms, 50))} ms  p99 ${f(percentile(ms, 99))} ms  ${codes.padEnd(10)}  RSS ${rssOf(server.pid).rss.toFixed(0)} MiB`);
    }
    // A duplicates report looks at every image (a kNN pass, every embedding read): one request each, when asked.
    for (const path of flag("--duplicates", "") === "yes" ? ["/api/duplicates?exact_only=true", "/api/duplicates"] : []) {
      const t1 = performance.now();
      // The server closes a connection idle for 120 s: a report that takes longer never arrives.
      const status = await fetch(server.url + path)
        .then(async (res) => (await res.arrayBuffer(), String(res.status)))
        .catch((err: Error) => `no answer (${err.message.slice(0, 60)})`);
      console.log(`${path.padEnd(34)} one request: ${status} after ${((performance.now() - t1) / 1000).toFixed(2)} s, RSS ${rssOf(server.pid).rss.toFixed(0)} MiB`);
    }
    console.log(`after: ${rssText(server.pid)}, peak ${rssOf(server.pid).peak.toFixed(0)} MiB`);
  } finally {
    await server.stop();
  }
}
