import { expect, test } from "bun:test";
import { lstatSync, mkdtempSync, readFileSync, readlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { collectMatches, matchFileName } from "../../src/engine/collect-matches.ts";

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
  const copied = await collectMatches([b, a], join(dir, "out"), "copy", at);
  expect(copied.map((p) => p.slice(dir.length))).toEqual([
    "/out/match_20240102_030405_rank001.png",
    "/out/match_20240102_030405_rank002.jpg",
  ]);
  expect(readFileSync(copied[0]!, "utf8")).toBe("BBB");
  const linked = await collectMatches([a], join(dir, "links"), "link", at);
  expect(lstatSync(linked[0]!).isSymbolicLink()).toBe(true);
  expect(readlinkSync(linked[0]!)).toBe(a);
});
