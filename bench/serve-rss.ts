// Memory of `imgd serve` (a child process) serving an index of N random vectors, phase by phase: after start (text
// tower warm), after text queries, after image queries (the image tower loads on the first), after both again, after
// the image tower has been closed for idleness (--image-idle-s); then the peak (VmHWM) and the largest mappings in the server's /proc/PID/smaps, to show where the memory goes.
// Issue 4 asks for RSS <= 400 MB with the CLIP towers loaded; test-clip's towers are 0.5 MB, so only clip-q8-cost
// (models/test/generate-q8-cost.ts: CLIP ViT-B/32's int8 towers, real sizes, random weights) says what real towers cost.
//
// Usage: bun bench/serve-rss.ts [--vectors 100000] [--dtype i8|f16|f32] [--model test-clip|clip-q8-cost] [--seconds 5]
//   [--binary dist/imgd]   (the compiled executable instead of `bun src/cli/main.ts`)
//   --model tinyclip-61m-q8-cost | tinyclip-40m-q8-cost | mobileclip-s0-q8-cost: what a smaller CLIP would hold
//
// Text queries run closed-loop at c=10, image queries (camera-sized JPEG uploads to POST /api/search) at c=2.
import { readFileSync } from "node:fs";
import type { VectorDType } from "../src/engine/store/index-manifest.ts";
import { cameraJpegs, flag, loadNote } from "./fixtures.ts";
import { benchIndex, closedLoop, modelsDirFor, nextQuery, rssOf, spawnServer, summarise, type LoadResult } from "./load.ts";

/** `concurrency` clients uploading `jpegs` (in turn) to POST /api/search for `seconds`: what closedLoop does for GETs. */
async function imageQueries(url: string, concurrency: number, seconds: number, jpegs: Uint8Array[]): Promise<LoadResult> {
  const result: LoadResult = { concurrency, seconds, requests: 0, latenciesMs: [], okLatenciesMs: [], statuses: new Map(), errors: 0 };
  const t0 = performance.now();
  const client = async () => {
    while (performance.now() < t0 + seconds * 1000) {
      const body = new FormData();
      body.append("image", new File([jpegs[result.requests % jpegs.length]! as Uint8Array<ArrayBuffer>], "query.jpg"));
      body.append("k", "20");
      const start = performance.now();
      try {
        const res = await fetch(`${url}/api/search`, { method: "POST", body });
        await res.arrayBuffer();
        result.statuses.set(res.status, (result.statuses.get(res.status) ?? 0) + 1);
        if (res.ok) result.okLatenciesMs.push(performance.now() - start);
        if (res.status === 429) await Bun.sleep(Number(res.headers.get("retry-after") ?? 1) * 1000);
      } catch {
        result.errors++;
      }
      result.latenciesMs.push(performance.now() - start);
      result.requests++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, client));
  result.seconds = (performance.now() - t0) / 1000;
  return result;
}

interface Mapping {
  name: string;
  sizeKb: number;
  rssKb: number;
  anonKb: number;
}

/** Every mapping of `pid` with its size, resident and anonymous kB; unnamed anonymous mappings are "[anon]". */
function mappings(pid: number): Mapping[] {
  const out: Mapping[] = [];
  for (const line of readFileSync(`/proc/${pid}/smaps`, "utf8").split("\n")) {
    const header = line.match(/^[0-9a-f]+-[0-9a-f]+\s+\S+\s+\S+\s+\S+\s+\d+\s*(.*)$/);
    if (header) {
      out.push({ name: header[1] || "[anon]", sizeKb: 0, rssKb: 0, anonKb: 0 });
      continue;
    }
    const field = line.match(/^(Size|Rss|Anonymous):\s+(\d+) kB/);
    const m = out[out.length - 1];
    if (!field || !m) continue;
    const kb = Number(field[2]);
    if (field[1] === "Size") m.sizeKb = kb;
    else if (field[1] === "Rss") m.rssKb = kb;
    else m.anonKb = kb;
  }
  return out;
}

function whereTheMemoryIs(pid: number, top = 8): string {
  const maps = mappings(pid);
  const mib = (kb: number) => (kb / 1024).toFixed(1).padStart(7);
  const byName = new Map<string, { rssKb: number; anonKb: number; count: number }>();
  for (const m of maps) {
    const g = byName.get(m.name) ?? { rssKb: 0, anonKb: 0, count: 0 };
    g.rssKb += m.rssKb;
    g.anonKb += m.anonKb;
    g.count++;
    byName.set(m.name, g);
  }
  const groups = [...byName].sort((a, b) => b[1].rssKb - a[1].rssKb).slice(0, top);
  const largest = [...maps].sort((a, b) => b.rssKb - a.rssKb).slice(0, top);
  return [
    `resident by mapping name (MiB):`,
    ...groups.map(([name, g]) => `  ${mib(g.rssKb)} rss ${mib(g.anonKb)} anon  ${String(g.count).padStart(4)} maps  ${name}`),
    `largest single mappings (MiB):`,
    ...largest.map((m) => `  ${mib(m.rssKb)} rss ${mib(m.sizeKb)} size  ${m.name}`),
  ].join("\n");
}

if (import.meta.main) {
  const count = Number(flag("--vectors", "100000"));
  const dtype = flag("--dtype", "i8") as VectorDType;
  const model = flag("--model", "test-clip");
  const seconds = Number(flag("--seconds", "5"));
  // Throws for a model it cannot generate.
  const modelsDir = modelsDirFor(model);
  const index = await benchIndex(count, dtype, model);
  const jpegs = (await cameraJpegs(4, 3000, 2000)).files.map((f) => new Uint8Array(readFileSync(f)));
  console.log(`imgd serve RSS: ${count} ${dtype} vectors, model ${model}; ${loadNote()}`);

  // Long enough to stay open through the phases below; the last phase waits it out.
  const idleS = seconds * 3;
  const server = await spawnServer(index, ["--image-idle-s", String(idleS)], modelsDir);
  const rows: string[] = [];
  const phase = (label: string, load = "") => {
    const m = rssOf(server.pid);
    rows.push(`${label.padEnd(22)} ${m.rss.toFixed(0).padStart(6)} ${m.anon.toFixed(0).padStart(6)} ${m.file.toFixed(0).padStart(6)}  ${load}`);
  };
  const textLoad = async () => summarise(await closedLoop(server.url, 10, seconds, () => `/api/search?q=${encodeURIComponent(nextQuery())}&k=20`));
  const imageLoad = async () => summarise(await imageQueries(server.url, 2, seconds, jpegs));
  try {
    phase("at ready");
    // Bun hands the start-up's freed pages back within about a second: this is what an idle server holds.
    await Bun.sleep(2000);
    phase("2 s later (text tower)");
    phase("text queries", await textLoad());
    phase("image queries", await imageLoad());
    phase("text again", await textLoad());
    phase("image again", await imageLoad());
    await Bun.sleep((idleS + 3) * 1000);
    phase(`idle ${idleS + 3} s (tower closed)`);
    console.log(`${"phase".padEnd(22)} ${"RSS".padStart(6)} ${"anon".padStart(6)} ${"file".padStart(6)}  MiB; load`);
    for (const row of rows) console.log(row);
    console.log(`${"peak (VmHWM)".padEnd(22)} ${rssOf(server.pid).peak.toFixed(0).padStart(6)}`);
    console.log(whereTheMemoryIs(server.pid));
  } finally {
    await server.stop();
  }
}
