// What a re-run of `imgd index` costs on a large library where little or nothing changed: the nightly run over a
// NAS of 100K-1M photos. The real CLI runs in a child process over tiny distinct files (never decoded: unchanged
// and touched files are never read whole) whose rows were written straight through IndexStore.addBatch, as an
// earlier run would have left them; the child's report says whether it took them for unchanged.
//
//   bun bench/rescan.ts --files 100000 [--dims 512] [--links 1] [--dir /tmp/imgd-rescan-N-D-L] [--cli src/cli/main.ts]
//                       [--coordinator [--port 18801]]
//
// Three runs: nothing changed; 1 % of the files touched (new mtime, same content) and 1 % deleted; 10 % touched
// and none deleted (a sync tool rewriting mtimes). Each prints the child's stage times, its wall (the report's, and
// the process's with start-up and close) and its peak RSS.
// --dims below 512 writes a copy of the test-clip manifest with that width (for 1M rows: a 512-wide catalog would
// not fit the disk), --links L makes every L paths hard links of one file (1M files at 4 KB each would not either).
// The fixture is kept for the next run; each changed-files run deletes another 1 %. --cli runs another checkout's
// imgd on it (a baseline: `git worktree add --detach /tmp/base <commit>`, then --cli /tmp/base/src/cli/main.ts).
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { imohashBytes } from "../src/engine/identity.ts";
import { IndexStore, type NewImage } from "../src/engine/store/index-store.ts";
import { flag, loadNote, prng, randomUnitVectors, REPO } from "./fixtures.ts";

const files = Number(flag("--files", "100000"));
const dims = Number(flag("--dims", "512"));
const links = Number(flag("--links", "1"));
const dir = flag("--dir", `/tmp/imgd-rescan-${files}-${dims}-${links}`);
const root = join(dir, "photos");
const indexDir = join(dir, "index");
const modelsDir = join(dir, "models");
const cli = flag("--cli", join(REPO, "src/cli/main.ts"));
const modelName = dims === 512 ? "test-clip" : `rescan-clip-${dims}`;

/** Path of the i-th file: 1,000 to a folder, as a camera's DCIM folders hold them. */
const pathOf = (i: number) => join(root, String(Math.floor(i / 1000)).padStart(4, "0"), `IMG_${String(i).padStart(7, "0")}.jpg`);
/** Which distinct file (inode) the i-th path is. */
const inodeOf = (i: number) => Math.floor(i / links);

function writeModel(): void {
  mkdirSync(modelsDir, { recursive: true });
  if (dims === 512) return;
  const manifest = JSON.parse(readFileSync(join(REPO, "models", "test-clip.json"), "utf8"));
  writeFileSync(join(modelsDir, `${modelName}.json`), JSON.stringify({ ...manifest, name: modelName, dims }));
  if (!existsSync(join(modelsDir, modelName))) symlinkSync(join(REPO, "models", "test-clip"), join(modelsDir, modelName));
}

async function buildFixture(): Promise<void> {
  const done = join(dir, "done");
  if (existsSync(done)) return;
  rmSync(dir, { recursive: true, force: true });
  writeModel();
  const t0 = performance.now();
  const manifest = JSON.parse(readFileSync(join(dims === 512 ? join(REPO, "models") : modelsDir, `${modelName}.json`), "utf8"));
  const store = await IndexStore.open(indexDir, {
    model: { name: manifest.name, dims: manifest.dims, preprocess: manifest.preprocess, tokenizer: manifest.tokenizer },
  });
  const rand = prng(files);
  const chunk = 10_000;
  try {
    for (let start = 0; start < files; start += chunk) {
      const end = Math.min(files, start + chunk);
      const content = (i: number) => Buffer.from(`imgd rescan fixture ${inodeOf(i)}\n`);
      for (let i = start; i < end; i++) {
        if (i % 1000 === 0) mkdirSync(join(pathOf(i), ".."), { recursive: true });
        if (i % links === 0) writeFileSync(pathOf(i), content(i));
        else linkSync(pathOf(i - (i % links)), pathOf(i));
      }
      // Stat'ed once every link of a file is made: a link changes its inode's ctime.
      const rows: NewImage[] = [];
      for (let i = start; i < end; i++) {
        const path = pathOf(i);
        const s = statSync(path);
        rows.push({
          path,
          size: s.size,
          mtimeMs: s.mtimeMs,
          ctimeMs: s.ctimeMs,
          imohash: imohashBytes(content(i)),
          width: 4000,
          height: 3000,
          takenAt: "2024-06-01T12:00:00",
          cameraMake: "imgd-bench",
          cameraModel: "rescan",
          status: "indexed",
        });
      }
      await store.addBatch(rows, randomUnitVectors(rows.length, dims, rand));
      process.stderr.write(`\rfixture: ${start + rows.length}/${files} files and rows`);
    }
  } finally {
    await store.close();
  }
  process.stderr.write(`\nfixture built in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`);
  writeFileSync(done, `${files}\n`);
}

interface Run {
  report: any;
  processSeconds: number;
  maxRssMb: number;
}

/** The real `imgd index` in a child process, and its peak RSS. */
async function runIndex(): Promise<Run> {
  const t0 = performance.now();
  const child = Bun.spawn(
    ["bun", cli, "index", root, "--index", indexDir, "--models", modelsDir, "--json"],
    { stdout: "pipe", stderr: "pipe", cwd: REPO },
  );
  const [out, err, code] = await Promise.all([new Response(child.stdout).text(), new Response(child.stderr).text(), child.exited]);
  if (code !== 0) throw new Error(`imgd index exited ${code}:\n${err}`);
  const maxRssMb = (child.resourceUsage()?.maxRSS ?? NaN) / 2 ** 20;
  return { report: JSON.parse(out.trim().split("\n").pop()!), processSeconds: (performance.now() - t0) / 1000, maxRssMb };
}

function print(label: string, run: Run): void {
  const r = run.report;
  const s = (ms: number) => (ms / 1000).toFixed(2).padStart(7);
  console.log(`\n${label}: ${r.scanned} files scanned; unchanged ${r.unchanged}, touched ${r.touched}, removed ${r.removed}, embedded ${r.embedded}, moved ${r.moved}`);
  const busy = r.stages.filter((row: any) => row.totalMs > 0);
  for (const row of busy) console.log(`  ${row.stage.padEnd(10)} ${s(row.totalMs)} s`);
  const accounted = busy.reduce((sum: number, row: any) => sum + row.totalMs, 0);
  console.log(`  ${"other".padEnd(10)} ${s(Math.max(0, r.wallMs - accounted))} s   (wall less the stages above)`);
  console.log(`  ${"wall".padEnd(10)} ${s(r.wallMs)} s   process ${run.processSeconds.toFixed(2)} s (start-up, model lookup, close)`);
  console.log(`  peak RSS   ${run.maxRssMb.toFixed(0).padStart(7)} MB`);
}

function expect(what: string, got: number, want: number): void {
  if (got !== want) throw new Error(`${what}: expected ${want}, got ${got}`);
}

/**
 * `imgd coordinator` on the same roots: a job is made (its first start, stopped at once), marked merged as if every
 * batch had been indexed and merged, then started again: it scans its roots again and, nothing changed, exits.
 * Then again with 1 % touched and 1 % deleted: it is timed to the moment it listens (workers would then be leased
 * the changed files), and stopped.
 */
async function runCoordinator(storage: string, stopWhenListening: boolean): Promise<{ seconds: number; maxRssMb: number; events: string; files: number }> {
  const t0 = performance.now();
  const child = Bun.spawn(
    ["bun", cli, "coordinator", root, "--storage", storage, "--port", flag("--port", "18801"),
      "--token-file", join(dir, "token"), "--plain", "--models", modelsDir, "--model", modelName],
    { stdout: "pipe", stderr: "pipe", cwd: REPO },
  );
  let seconds = NaN;
  const listening = (async () => {
    const decoder = new TextDecoder();
    let out = "";
    const reader = child.stdout.getReader();
    for (let read = await reader.read(); !read.done; read = await reader.read()) {
      out += decoder.decode(read.value);
      if (out.includes('"listening"')) {
        seconds = (performance.now() - t0) / 1000;
        if (stopWhenListening) child.kill("SIGTERM");
        return;
      }
    }
  })();
  const [err, code] = await Promise.all([new Response(child.stderr).text(), child.exited, listening]);
  if (code !== 0 && code !== 130 && !stopWhenListening) throw new Error(`imgd coordinator exited ${code}:\n${err}`);
  const maxRssMb = (child.resourceUsage()?.maxRSS ?? NaN) / 2 ** 20;
  if (!stopWhenListening) seconds = (performance.now() - t0) / 1000;
  const events = err.split("\n").filter((l) => /roots scanned again|resumed job|new job/.test(l)).join("\n  ");
  const files = Number(/(\d+) files in \d+ batches/.exec(events)?.[1] ?? NaN);
  return { seconds, maxRssMb, events, files };
}

async function markMerged(storage: string): Promise<void> {
  const { loadDuckDB } = await import("../src/engine/native.ts");
  const { ledgerPath, mergedIndexDir } = await import("../src/cluster-net/storage-layout.ts");
  const instance = await loadDuckDB().DuckDBInstance.create(ledgerPath(storage));
  const conn = await instance.connect();
  await conn.run(`UPDATE batches SET state = 'committed', committed_by = 'index', merged = true, indexed = file_count, failed = 0,
    committed_ms = epoch_ms(now()), attempts = 1`);
  await conn.run("UPDATE files SET failed = false");
  await conn.run("UPDATE job SET phase = 'merged'");
  conn.closeSync();
  instance.closeSync();
  if (!existsSync(mergedIndexDir(storage))) symlinkSync(indexDir, mergedIndexDir(storage));
}

/**
 * 1 % of the files touched (every 100th inode: new mtime, same bytes) and 1 % of `scanned` deleted (other files, every
 * link of each: unlinking one changes the ctime of the others, which would count as touched), as a nightly run meets them.
 */
function touchAndDelete(scanned: number): { touchedPaths: number; deleted: number[] } {
  const alive: number[] = [];
  for (let i = 0; i < files; i++) if (existsSync(pathOf(i))) alive.push(i);
  const later = new Date(Date.now() + 60_000);
  let touchedPaths = 0;
  const touchedInodes = new Set<number>();
  for (const i of alive) {
    if (inodeOf(i) % 100 !== 7) continue;
    if (!touchedInodes.has(inodeOf(i))) utimesSync(pathOf(i), later, later);
    touchedInodes.add(inodeOf(i));
    touchedPaths++;
  }
  const byInode = new Map<number, number[]>();
  for (const i of alive) if (inodeOf(i) % 100 !== 7) byInode.set(inodeOf(i), [...(byInode.get(inodeOf(i)) ?? []), i]);
  const deleted: number[] = [];
  for (const [k, paths] of [...byInode.values()].entries()) {
    if (deleted.length >= Math.round(scanned / 100)) break;
    if (k % 99 === 50) deleted.push(...paths);
  }
  for (const i of deleted) unlinkSync(pathOf(i));
  return { touchedPaths, deleted };
}

await buildFixture();
if (process.argv.includes("--coordinator")) {
  writeFileSync(join(dir, "token"), "imgd-rescan-bench-token-0123456789abcdef");
  const storage = join(dir, "coordinator-storage");
  rmSync(storage, { recursive: true, force: true });
  const created = await runCoordinator(storage, true);
  console.log(`coordinator (${cli}), ${loadNote()}\nfirst start (scan, job made): ${created.seconds.toFixed(2)} s to listen, peak RSS ${created.maxRssMb.toFixed(0)} MB\n  ${created.events}`);
  await markMerged(storage);
  const again = await runCoordinator(storage, false);
  console.log(`merged job, nothing changed: ${again.seconds.toFixed(2)} s start to exit, peak RSS ${again.maxRssMb.toFixed(0)} MB\n  ${again.events}`);
  const { touchedPaths, deleted } = touchAndDelete(created.files);
  const changedStart = await runCoordinator(storage, true);
  console.log(`merged job, ${touchedPaths} touched and ${deleted.length} deleted: ${changedStart.seconds.toFixed(2)} s to listen, peak RSS ${changedStart.maxRssMb.toFixed(0)} MB\n  ${changedStart.events}`);
  process.exit(0);
}
console.log(`rescan (${cli}): ${files} files (${links} path${links === 1 ? "" : "s"} per inode), ${dims}-d rows, ${loadNote()}`);

let unchanged = await runIndex();
// Files a coordinator run of this bench changed are caught up first.
if (unchanged.report.unchanged !== unchanged.report.scanned) unchanged = await runIndex();
print("nothing changed", unchanged);
expect("unchanged", unchanged.report.unchanged, unchanged.report.scanned);

const { touchedPaths, deleted } = touchAndDelete(unchanged.report.scanned);
const changed = await runIndex();
print(`${touchedPaths} touched, ${deleted.length} deleted`, changed);
expect("touched", changed.report.touched, touchedPaths);
expect("removed", changed.report.removed, deleted.length);
expect("embedded", changed.report.embedded, 0);

// 10 % touched and nothing deleted, as after a sync tool or `touch` rewrote mtimes: no vector changes.
const later = new Date(Date.now() + 120_000);
let retouched = 0;
for (let i = 0; i < files; i++) {
  if (inodeOf(i) % 10 !== 3 || !existsSync(pathOf(i))) continue;
  if (i % links === 0 || !existsSync(pathOf(i - (i % links)))) utimesSync(pathOf(i), later, later);
  retouched++;
}
const touchOnly = await runIndex();
print(`${retouched} touched, none deleted`, touchOnly);
expect("touched", touchOnly.report.touched, retouched);
console.log(`\nfixture kept at ${dir} for the next run (rm -rf it when done)`);
