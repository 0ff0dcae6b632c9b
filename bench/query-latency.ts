// Query latency at index sizes of 100K and 1M vectors: the vector search alone (IndexStore.search, k=10), the
// in-process query (runQuery: text embed + search), and `imgd query` as a fresh process, so process start-up and
// index open can be told apart from the query work itself; then the same command while `imgd serve` holds the index
// (the query goes through the server), as a ratio against the command on its own.
// Usage: bun bench/query-latency.ts [--sizes 100000,1000000] [--searches 500] [--queries 50] [--spawns 30] [--dtype i8|f16|f32]
//   [--max-build-seconds 600]
// Indexes hold synthetic rows (random unit vectors, fake paths) under the test-clip model, so the CLI can load a
// text tower; they are built once under .bench/ and reused.
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { runQuery } from "../src/engine/query.ts";
import { IndexStore, type VectorDType } from "../src/engine/store/index-store.ts";
import { flag, latencySummary, loadNote, prng, randomUnitVectors, recordedBuildSeconds, REPO, syntheticIndex, syntheticIndexDir, testClipModel, type SyntheticIndex } from "./fixtures.ts";

const requested = flag("--sizes", "100000,1000000").split(",").map(Number);
const searches = Number(flag("--searches", "500"));
const dtype = flag("--dtype", "i8") as VectorDType;
const queries = Number(flag("--queries", "50"));
const spawns = Number(flag("--spawns", "30"));
const maxBuildSeconds = Number(flag("--max-build-seconds", "600"));
const K = 10;
const TEXTS = ["a red car", "a yellow car", "sunset at the beach", "a cat on a sofa", "green forest", "blue sky over snow"];

const model = await testClipModel();
console.log(
  `${cpus().length} CPUs (${cpus()[0]?.model.trim()}), ${(totalmem() / 2 ** 30).toFixed(0)} GiB RAM; model ${model.manifest.name} ` +
    `(${model.manifest.dims}-d); k=${K}; synthetic rows with random unit vectors, built through IndexStore.addBatch`,
);

/** Builds (or reuses) each index; a size whose projected build time is over the budget is replaced by 300K. */
async function indexes(): Promise<SyntheticIndex[]> {
  const built: SyntheticIndex[] = [];
  let rowsPerSecond: number | null = null;
  for (const size of [...requested].sort((a, b) => a - b)) {
    let n = size;
    // HNSW inserts slow down as the graph grows, so the projection from a smaller build is padded by half.
    const projected = rowsPerSecond ? (1.5 * n) / rowsPerSecond : null;
    if (projected !== null && projected > maxBuildSeconds && !cachedExists(n)) {
      console.log(`${n} rows would take ~${projected.toFixed(0)} s to build (> ${maxBuildSeconds} s): using 300000 instead`);
      n = 300_000;
    }
    let lastLog = performance.now();
    const index = await syntheticIndex(model, n, (rows) => {
      if (performance.now() - lastLog > 30_000) {
        lastLog = performance.now();
        console.log(`  building ${n}: ${rows} rows`);
      }
    }, dtype);
    const seconds = index.buildSeconds ?? recordedBuildSeconds(index);
    if (seconds) rowsPerSecond = n / seconds;
    console.log(
      `index ${n}: ${index.dir} (${index.buildSeconds === null ? "cached; built" : "built"} in ${seconds?.toFixed(0) ?? "?"} s, ` +
        `${rowsPerSecond?.toFixed(0) ?? "?"} rows/s)`,
    );
    built.push(index);
  }
  return built;
}

function cachedExists(n: number): boolean {
  return Bun.file(join(syntheticIndexDir(model, n, dtype), "done")).size > 0;
}

async function timeEach(n: number, work: (i: number) => Promise<unknown>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await work(i);
    out.push(performance.now() - t0);
  }
  return out;
}

async function measure(index: SyntheticIndex): Promise<void> {
  console.log(`\n== ${index.count} vectors == (${loadNote()})`);
  const t0 = performance.now();
  const store = await IndexStore.open(index.dir, { readOnly: true });
  const openMs = performance.now() - t0;
  try {
    const probes = randomUnitVectors(searches + 20, model.manifest.dims, prng(index.count + 1));
    const probe = (i: number) => probes.subarray(i * model.manifest.dims, (i + 1) * model.manifest.dims);
    const first = await timeEach(1, () => store.search(probe(0), K));
    await timeEach(19, (i) => store.search(probe(i + 1), K));
    const search = await timeEach(searches, (i) => store.search(probe(i + 20), K));
    console.log(`IndexStore.open (read-only):          ${openMs.toFixed(0)} ms`);
    console.log(`first search after open:               ${first[0]!.toFixed(1)} ms`);
    console.log(`IndexStore.search, random unit vectors ${latencySummary(search)}`);

    const embed: number[] = [];
    const searchPart: number[] = [];
    await runQuery({ text: TEXTS[0]! }, K, {}, model, store);
    const total = await timeEach(queries, async (i) => {
      const r = await runQuery({ text: TEXTS[i % TEXTS.length]! }, K, {}, model, store);
      embed.push(r.timings.embedMs);
      searchPart.push(r.timings.searchMs);
    });
    console.log(`runQuery (in-process, text), total    ${latencySummary(total)}`);
    console.log(`  of which text embed                 ${latencySummary(embed)}`);
    console.log(`  of which search                     ${latencySummary(searchPart)}`);
  } finally {
    await store.close();
  }

  const local = await spawnQueries(index, "imgd query");
  console.log(`  of which inside the command          ${latencySummary(local.inCommand)}  (open index + model + query)`);
  console.log(`  so start-up before the command runs  ${latencySummary(local.wall.map((w, i) => w - local.inCommand[i]!))}`);

  // The same command while `imgd serve` holds the index: it finds the server beside the catalog and asks it.
  const server = await startServe(index.dir);
  try {
    const through = await spawnQueries(index, "imgd query via imgd serve");
    console.log(`  p50 ratio, by itself / through serve ${(median(local.wall) / median(through.wall)).toFixed(1)}x`);
  } finally {
    server.kill("SIGTERM");
    await server.exited;
  }
}

async function spawnQueries(index: SyntheticIndex, label: string): Promise<{ wall: number[]; inCommand: number[] }> {
  const wall: number[] = [];
  const inCommand: number[] = [];
  for (let i = 0; i < spawns + 1; i++) {
    const t = performance.now();
    const proc = Bun.spawn(
      [process.execPath, join(REPO, "src/cli/main.ts"), "query", "a red car", "--index", index.dir, "--models", join(REPO, "models"), "-k", String(K), "--json"],
      { stdout: "pipe", stderr: "pipe", cwd: REPO },
    );
    const [out, err, code] = await Promise.all([new Response(proc.stdout).text(), new Response(proc.stderr).text(), proc.exited]);
    const ms = performance.now() - t;
    if (code !== 0) throw new Error(`imgd query exited ${code}: ${err}`);
    const result = JSON.parse(out) as { hits: unknown[]; timings: { totalMs: number } };
    if (result.hits.length !== K) throw new Error(`imgd query returned ${result.hits.length} hits, expected ${K}`);
    // The first spawn warms the page cache for the index files; it is reported apart.
    if (i === 0) {
      console.log(`${`${label}, first spawn:`.padEnd(38)} ${ms.toFixed(0)} ms`);
      continue;
    }
    wall.push(ms);
    inCommand.push(result.timings.totalMs);
  }
  console.log(`${`${label} (spawned, wall)`.padEnd(38)} ${latencySummary(wall)}`);
  return { wall, inCommand };
}

async function startServe(indexDir: string) {
  const proc = Bun.spawn(
    [process.execPath, join(REPO, "src/cli/main.ts"), "serve", "--index", indexDir, "--models", join(REPO, "models"), "--port", "0", "--log", "/dev/null"],
    { stdout: "ignore", stderr: "pipe" },
  );
  const reader = proc.stderr.getReader();
  let said = "";
  while (!said.includes("imgd: ready")) {
    const { done, value } = await reader.read();
    if (done) throw new Error(`imgd serve exited before it was ready:\n${said}`);
    said += new TextDecoder().decode(value);
  }
  reader.releaseLock();
  return proc;
}

function median(xs: number[]): number {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

const baseline = await timeEach(10, async () => {
  await Bun.spawn([process.execPath, "-e", "0"], { stdout: "ignore", stderr: "ignore" }).exited;
});
console.log(`bun -e 0 (bare process start-up)       ${latencySummary(baseline)}`);

for (const index of await indexes()) await measure(index);
