// `imgd index` over a phone's folder of HEIC photos (HEVC), through the real CLI: indexed like their PNG twin,
// damaged ones recorded and skipped, unchanged on a re-run, and found by text, by image and by what the objects
// stage (which decodes through the same path) saw in them.
import { beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { storedCosine } from "../fixtures/stored-cosine.ts";
import { imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

const FIXTURES = join(import.meta.dir, "../fixtures/heic");
const sharp = loadSharp();
const heifEnc = Bun.which("heif-enc");

describe("imgd index on a folder of iPhone photos (HEIC)", () => {
  const root = tempDir("heic-index");
  const phone = join(root, "phone");
  const twins = join(root, "twins");
  const index = join(root, "index");
  const base = ["--index", index];
  let first: Record<string, any>;

  beforeAll(async () => {
    mkdirSync(phone);
    mkdirSync(twins);
    for (const [fixture, name] of [["photo", "IMG_0001.HEIC"], ["rotated", "IMG_0002.HEIC"], ["ten-bit", "IMG_0003.HEIC"], ["alpha", "IMG_0004.heic"], ["grid", "IMG_0008.HEIC"]]) {
      cpSync(join(FIXTURES, `${fixture}.heic`), join(phone, name));
    }
    const whole = readFileSync(join(FIXTURES, "photo.heic"));
    writeFileSync(join(phone, "IMG_0005.HEIC"), whole.subarray(0, whole.length >> 1));
    // Its picture parameter set zeroed: whole to its last box, undecodable.
    const damaged = Buffer.from(whole);
    const pps = damaged.indexOf(Buffer.from([0x44, 0x01]), damaged.indexOf("hvcC"));
    damaged.fill(0, pps + 2, pps + 7);
    writeFileSync(join(phone, "IMG_0006.HEIC"), damaged);
    // The photo the fixtures were made from, as a PNG: what the HEICs' rows must match.
    await sharp(join(PHOTOS, "building.jpg")).resize(190, 126, { fit: "fill" }).png().toFile(join(twins, "building.png"));
    // No saturated red or blue of its own, which the test detector would call a car or a person.
    cpSync(join(PHOTOS, "home.jpg"), join(twins, "home.jpg"));
    if (heifEnc) {
      // The test YOLO model calls saturated red a car.
      const jpeg = join(root, "red-car.jpg");
      await sharp(join(PHOTOS, "home.jpg"))
        .resize(640, 427, { fit: "fill" })
        .composite([{ input: { create: { width: 140, height: 90, channels: 3, background: "#ff0000" } }, left: 40, top: 40 }])
        .jpeg({ quality: 92 })
        .toFile(jpeg);
      const run = Bun.spawnSync([heifEnc, "-q", "80", jpeg, "-o", join(phone, "IMG_0007.HEIC")], { stdout: "pipe", stderr: "pipe" });
      if (run.exitCode !== 0) throw new Error(run.stderr.toString());
    }
    first = await imgdJson(["index", phone, twins, ...base, "--model", "test-clip", "--objects", "--object-model", "test-yolo", "--threads", "1"]);
  }, 240_000);

  test("each HEIC is indexed with the embedding, size and camera of the photo it holds", async () => {
    expect(first.embedded).toBe(heifEnc ? 8 : 7);
    expect(first.failed).toBe(2);
    const store = await IndexStore.open(index, { readOnly: true });
    try {
      const known = await store.knownFiles();
      const cosineOf = (x: string, y: string) => storedCosine(store, x, y);
      const twin = join(twins, "building.png");
      for (const name of ["IMG_0001.HEIC", "IMG_0002.HEIC", "IMG_0003.HEIC", "IMG_0004.heic", "IMG_0008.HEIC"]) {
        const path = join(phone, name);
        expect([name, known.get(path)?.status]).toEqual([name, "indexed"]);
        expect([name, (await cosineOf(path, twin)) > 0.99]).toEqual([name, true]);
        const row = (await store.getImage(known.get(path)!.id))!;
        expect([name, row.width, row.height]).toEqual([name, 190, 126]);
      }
      // Another photo embeds differently: the check above can fail.
      expect(await cosineOf(join(phone, "IMG_0001.HEIC"), join(twins, "home.jpg"))).toBeLessThan(0.99);
      const row = (await store.getImage(known.get(join(phone, "IMG_0001.HEIC"))!.id))!;
      expect([row.takenAt, row.cameraMake, row.cameraModel]).toEqual(["2023-07-14T10:20:30", "Apple", "iPhone 15 Pro"]);
    } finally {
      await store.close();
    }
  });

  test("a cut HEIC and one whose HEVC stream is damaged are failed rows that say why; the run went on", async () => {
    const info = await imgdJson(["info", ...base, "--errors"]);
    const failures = Object.fromEntries((info.failures as { path: string; reason: string; error: string }[]).map((f) => [f.path.slice(phone.length + 1), f]));
    expect(Object.keys(failures).sort()).toEqual(["IMG_0005.HEIC", "IMG_0006.HEIC"]);
    expect(failures["IMG_0005.HEIC"]!.reason).toBe("truncated");
    expect(failures["IMG_0006.HEIC"]!.reason).toBe("corrupt");
    expect(failures["IMG_0006.HEIC"]!.error).toContain("libheif");
  });

  test("a second run finds every HEIC unchanged and decodes none", async () => {
    const again = await imgdJson(["index", phone, twins, ...base, "--model", "test-clip", "--objects", "--object-model", "test-yolo", "--threads", "1"]);
    expect([again.embedded, again.failed, again.unchanged]).toEqual([0, 0, first.scanned]);
  }, 120_000);

  test("query by text returns HEICs with their date and camera, and query --image with a HEIC finds it first", async () => {
    const text = await imgdJson(["query", "a building", ...base, "-k", "20"]);
    const hit = text.hits.find((h: { path: string }) => h.path === join(phone, "IMG_0001.HEIC"));
    expect(hit).toMatchObject({ takenAt: "2023-07-14T10:20:30", cameraMake: "Apple", width: 190, height: 126 });
    const image = await imgdJson(["query", "--image", join(phone, "IMG_0002.HEIC"), ...base, "-k", "1"]);
    expect(image.hits[0].path).toBe(join(phone, "IMG_0002.HEIC"));
  });

  test.skipIf(!heifEnc)("the objects stage sees what a HEIC shows: a red block is the test model's car (needs heif-enc)", async () => {
    const cars = await imgdJson(["query", "red", ...base, "--has", "car"]);
    expect(cars.hits.map((h: { path: string }) => h.path)).toEqual([join(phone, "IMG_0007.HEIC")]);
  });
});
