import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { storedCosine } from "../fixtures/stored-cosine.ts";
import { bmp24, bmpFixture } from "../fixtures/bmp-files.ts";
import { imgd, imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

const sharp = loadSharp();

describe("imgd index on a folder of BMP scans", () => {
  const root = tempDir("bmp-index");
  const scans = join(root, "scans");
  // The same pictures as PNG files, indexed too: what each BMP's row must match.
  const twins = join(root, "twins");
  const index = join(root, "index");
  // BMP in scans -> its PNG twin.
  const pairs: Record<string, string> = {};

  beforeAll(async () => {
    mkdirSync(scans);
    mkdirSync(twins);
    // A photo at scanner size, as plain 24-bit rows; and fixtures ImageMagick wrote (RLE8, 32-bit with alpha, OS/2).
    const { data, info } = await sharp(join(PHOTOS, "fruits.jpg")).resize(1200, 900).raw().toBuffer({ resolveWithObject: true });
    writeFileSync(join(scans, "Scan0001.BMP"), bmp24(data, info.width, info.height));
    writeFileSync(join(twins, "Scan0001.png"), await sharp(data, { raw: info }).png().toBuffer());
    pairs["Scan0001.BMP"] = "Scan0001.png";
    for (const [bmp, png] of [["rle8.bmp", "photo-200.png"], ["v5-argb32.bmp", "photo-alpha.png"], ["os2-core-rgb24.bmp", "photo.png"]]) {
      writeFileSync(join(scans, bmp), bmpFixture(bmp));
      writeFileSync(join(twins, `${bmp}.png`), bmpFixture(png));
      pairs[bmp] = `${bmp}.png`;
    }
    // Damaged ones: cut short, a header no writer produces, and 60 bytes that claim 2^31-1 pixels a side.
    writeFileSync(join(scans, "cut.bmp"), bmpFixture("rgb24.bmp").subarray(0, 3000));
    const bad = bmpFixture("rgb24.bmp");
    new DataView(bad.buffer).setUint32(14, 99, true);
    writeFileSync(join(scans, "badheader.bmp"), bad);
    const bomb = bmpFixture("rgb24.bmp").slice(0, 60);
    new DataView(bomb.buffer).setInt32(18, 0x7fffffff, true);
    new DataView(bomb.buffer).setInt32(22, 0x7fffffff, true);
    writeFileSync(join(scans, "bomb.bmp"), bomb);
    const r = await imgd(["index", scans, twins, "--index", index, "--model", "test-clip"]);
    expect(r.code).toBe(0);
  });

  test("each BMP is indexed with its PNG twin's embedding and size", async () => {
    const store = await IndexStore.open(index, { readOnly: true });
    try {
      const known = await store.knownFiles();
      const cosineOf = (x: string, y: string) => storedCosine(store, x, y);
      for (const [bmp, png] of Object.entries(pairs)) {
        const [path, twin] = [join(scans, bmp), join(twins, png)];
        expect(known.get(path)?.status).toBe("indexed");
        expect(await cosineOf(path, twin)).toBeGreaterThan(0.999);
        const [row, twinRow] = [(await store.getImage(known.get(path)!.id))!, (await store.getImage(known.get(twin)!.id))!];
        expect([row.width, row.height]).toEqual([twinRow.width, twinRow.height]);
      }
      // Not every picture embeds alike: the check above can fail.
      expect(await cosineOf(join(scans, "Scan0001.BMP"), join(twins, "os2-core-rgb24.bmp.png"))).toBeLessThan(0.99);
    } finally {
      await store.close();
    }
  });

  test("damaged BMPs are failed rows that say what is wrong", async () => {
    const info = await imgdJson(["info", "--index", index, "--errors"]);
    const failures = Object.fromEntries(
      (info.failures as { path: string; reason: string; error: string }[]).map((f) => [f.path.slice(scans.length + 1), f]),
    );
    expect(Object.keys(failures).sort()).toEqual(["badheader.bmp", "bomb.bmp", "cut.bmp"]);
    expect(failures["cut.bmp"]!.reason).toBe("truncated");
    expect(failures["cut.bmp"]!.error).toContain("the BMP file holds 20 of its 35 rows");
    expect(failures["badheader.bmp"]!.reason).toBe("corrupt");
    expect(failures["badheader.bmp"]!.error).toContain("bad BMP header: a DIB header of 99 bytes");
    expect(failures["bomb.bmp"]!.reason).toBe("too-many-pixels");
    expect(failures["bomb.bmp"]!.error).toContain("2147483647x2147483647");
  });

  test("query --image takes a BMP and finds it and its twin first", async () => {
    const r = await imgdJson(["query", "--image", join(scans, "Scan0001.BMP"), "--index", index, "-k", "2"]);
    expect(r.hits.map((h: { path: string }) => h.path).sort()).toEqual([join(scans, "Scan0001.BMP"), join(twins, "Scan0001.png")]);
  });
});
