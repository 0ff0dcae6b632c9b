import { expect, test } from "bun:test";
import { chmodSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collectMatches, ensureMatchFolder, matchFileName } from "../../src/engine/collect-matches.ts";

test("copies are named match_YYYYMMDD_HHMMSS_rankNNN with the source's extension", () => {
  const at = new Date(2024, 5, 1, 9, 8, 7);
  expect(matchFileName(at, 1, "/p/IMG_1.JPG")).toBe("match_20240601_090807_rank001.jpg");
  expect(matchFileName(at, 12, "/p/x.png")).toBe("match_20240601_090807_rank012.png");
});

test("copy mode writes byte-identical files and link mode writes symlinks to the originals", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-matches-"));
  const a = join(dir, "a.jpg");
  const b = join(dir, "b.png");
  writeFileSync(a, "AAA");
  writeFileSync(b, "BBB");
  const at = new Date(2024, 0, 2, 3, 4, 5);
  const { written: copied } = await collectMatches([b, a], join(dir, "out"), "copy", at);
  expect(copied.map((p) => p.slice(dir.length))).toEqual([
    "/out/match_20240102_030405_rank001.png",
    "/out/match_20240102_030405_rank002.jpg",
  ]);
  expect(readFileSync(copied[0]!, "utf8")).toBe("BBB");
  const { written: linked } = await collectMatches([a], join(dir, "links"), "link", at);
  expect(lstatSync(linked[0]!).isSymbolicLink()).toBe(true);
  expect(readlinkSync(linked[0]!)).toBe(a);
});

test("a name already taken (a second query in the same second) gets -2, -3, and nothing is overwritten", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-matches-"));
  const [a, b] = [join(dir, "a.jpg"), join(dir, "b.jpg")];
  writeFileSync(a, "AAA");
  writeFileSync(b, "BBB");
  const at = new Date(2024, 0, 2, 3, 4, 5);
  const out = join(dir, "out");
  await collectMatches([a], out, "copy", at);
  const second = await collectMatches([b], out, "copy", at);
  const third = await collectMatches([a], out, "link", at);
  expect(second.written.map((p) => p.slice(out.length))).toEqual(["/match_20240102_030405_rank001-2.jpg"]);
  expect(third.written.map((p) => p.slice(out.length))).toEqual(["/match_20240102_030405_rank001-3.jpg"]);
  expect(readFileSync(join(out, "match_20240102_030405_rank001.jpg"), "utf8")).toBe("AAA");
  expect(readFileSync(second.written[0]!, "utf8")).toBe("BBB");
});

test("a hit whose file is gone is skipped with its reason, and the hits after it are still written", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-matches-"));
  const a = join(dir, "a.jpg");
  writeFileSync(a, "AAA");
  const gone = join(dir, "gone.jpg");
  const r = await collectMatches([gone, a], join(dir, "out"), "copy", new Date(2024, 0, 2, 3, 4, 5));
  expect(r.skipped).toEqual([{ path: gone, reason: "ENOENT" }]);
  expect(r.written.map((p) => p.split("/").pop())).toEqual(["match_20240102_030405_rank002.jpg"]);
});

test("a target that is a file, or lies under one, is refused with a sentence saying so", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-matches-"));
  const file = join(dir, "picked.jpg");
  writeFileSync(file, "AAA");
  await expect(collectMatches([file], file, "copy")).rejects.toThrow(`${file} is a file, not a folder to put the matches in`);
  await expect(ensureMatchFolder(join(file, "sub"))).rejects.toThrow(`cannot create the folder ${join(file, "sub")} for the matches (ENOTDIR)`);
  expect(readFileSync(file, "utf8")).toBe("AAA");
});

test("a folder the user cannot write to is refused with a sentence naming it, as the query checks before searching", async () => {
  const dir = mkdtempSync(join(tmpdir(), "imgd-matches-"));
  const locked = join(dir, "locked");
  mkdirSync(locked, { mode: 0o555 });
  chmodSync(dir, 0o755);
  // Root writes through mode bits: as root, the check runs as nobody, as a user without the right would.
  const script = join(dir, "ensure.ts");
  writeFileSync(
    script,
    `const { ensureMatchFolder } = await import(${JSON.stringify(join(import.meta.dir, "../../src/engine/collect-matches.ts"))});\n` +
      `await ensureMatchFolder(${JSON.stringify(locked)}).then(() => console.log("ok"), (e) => console.log(e.message));\n`,
  );
  const asNobody = process.getuid?.() === 0 ? ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] : [];
  const child = Bun.spawnSync([...asNobody, process.execPath, script], { cwd: dir });
  expect(child.stdout.toString().trim()).toBe(`cannot write the matches into the folder ${locked} (EACCES)`);
  expect(readdirSync(locked)).toEqual([]);
});
