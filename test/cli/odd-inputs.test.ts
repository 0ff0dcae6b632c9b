// `imgd index --faces --objects` over a folder of what real photo folders also hold: EXIF-rotated, CMYK, 16-bit,
// grey+alpha and animated images, extreme sizes, a decompression bomb, broken files, odd names and symlink loops.
// Usable files are indexed as their upright first frame; the others are recorded with a reason; a re-run is a no-op.
import { beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, copyFileSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { basename, join } from "node:path";
import { crc32 } from "node:zlib";
import { loadSharp } from "../../src/engine/native.ts";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { imgd, imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

const sharp = loadSharp();
const root = tempDir("odd-inputs");
const photos = join(root, "photos");
const index = join(root, "index");
const stages = ["--faces", "--face-detector", "test-scrfd", "--face-embedder", "test-arcface", "--objects", "--object-model", "test-yolo"];
const indexArgs = ["index", photos, "--index", index, "--model", "test-clip", "--follow-symlinks", "--threads", "1", ...stages];
// As root, chmod 000 does not stop a read: the unreadable case only means something for another user.
const asRoot = process.getuid?.() === 0;

/** A 1x1 PNG whose header claims width x height: a few bytes that would decode to gigabytes. */
async function pngClaiming(width: number, height: number): Promise<Buffer> {
  const png = await sharp({ create: { width: 1, height: 1, channels: 3, background: "#fff" } }).png().toBuffer();
  png.writeUInt32BE(width, 16);
  png.writeUInt32BE(height, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  return png;
}

const FAILURES: Record<string, string> = {
  "bomb.png": "too-many-pixels",
  "truncated.jpg": "truncated",
  "empty.jpg": "empty-file",
  "text.jpg": "not-an-image",
  "broken\nname.jpg": "not-an-image",
  ...(asRoot ? {} : { "locked.jpg": "unreadable" }),
};

beforeAll(async () => {
  mkdirSync(join(photos, "x.jpg"), { recursive: true });
  // Upright: a red "car" top left and a skin-coloured "face" bottom right, for the test detectors.
  const upright = await sharp(join(PHOTOS, "home.jpg"))
    .resize(600, 400, { fit: "fill" })
    .composite([
      { input: { create: { width: 120, height: 80, channels: 3, background: "#ff0000" } }, left: 30, top: 30 },
      { input: { create: { width: 90, height: 110, channels: 3, background: { r: 230, g: 180, b: 150 } } }, left: 460, top: 250 },
    ])
    .png()
    .toBuffer();
  await sharp(upright).jpeg({ quality: 95 }).toFile(join(photos, "upright.jpg"));
  // Stored turned a quarter, with the EXIF orientation that turns it back (6: 90° clockwise, 8: 90° anticlockwise).
  const turned = async (angle: number) => sharp(await sharp(upright).rotate(angle).toBuffer());
  await (await turned(270)).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toFile(join(photos, "orient6.jpg"));
  await (await turned(90)).withMetadata({ orientation: 8 }).jpeg({ quality: 95 }).toFile(join(photos, "orient8.jpg"));
  await (await turned(270)).jpeg({ quality: 95 }).toFile(join(photos, "sideways.jpg"));

  // Animated: a red "car" in the first frame only; the later, all-blue frames would be a "person".
  const first = await sharp(join(PHOTOS, "home.jpg"))
    .resize(200, 150, { fit: "fill" })
    .composite([{ input: { create: { width: 100, height: 80, channels: 3, background: "#ff0000" } }, left: 50, top: 35 }])
    .png()
    .toBuffer();
  const blue = await sharp({ create: { width: 200, height: 150, channels: 3, background: "#0000ff" } }).png().toBuffer();
  writeFileSync(join(photos, "first-frame.png"), first);
  await sharp([first, blue, blue], { join: { animated: true } }).gif({ delay: 100 }).toFile(join(photos, "anim.gif"));
  await sharp([first, blue, blue], { join: { animated: true } }).webp({ delay: 100, lossless: true }).toFile(join(photos, "anim.webp"));

  await sharp(join(PHOTOS, "fruits.jpg")).toColourspace("cmyk").jpeg().toFile(join(photos, "cmyk.jpg"));
  await sharp(join(PHOTOS, "coffee.png")).toColourspace("rgb16").png().toFile(join(photos, "sixteen-bit.png"));
  await sharp(join(PHOTOS, "chelsea.png")).toColourspace("b-w").ensureAlpha(0.5).png().toFile(join(photos, "grey-alpha.png"));
  await sharp({ create: { width: 1, height: 1, channels: 3, background: "#00ff00" } }).png().toFile(join(photos, "one-pixel.png"));
  await sharp({ create: { width: 3, height: 50_000, channels: 3, background: "#ffcc00" } }).png().toFile(join(photos, "thin.png"));
  await sharp({ create: { width: 50_000, height: 3, channels: 3, background: "#00ccff" } }).jpeg().toFile(join(photos, "wide.jpg"));

  writeFileSync(join(photos, "bomb.png"), await pngClaiming(30_000, 30_000));
  const orange = readFileSync(join(PHOTOS, "orange.jpg"));
  writeFileSync(join(photos, "truncated.jpg"), orange.subarray(0, orange.length >> 1));
  writeFileSync(join(photos, "empty.jpg"), "");
  writeFileSync(join(photos, "text.jpg"), "not a photo\n");
  writeFileSync(join(photos, "broken\nname.jpg"), "not a photo either\n");
  if (!asRoot) {
    copyFileSync(join(PHOTOS, "baboon.jpg"), join(photos, "locked.jpg"));
    chmodSync(join(photos, "locked.jpg"), 0o000);
  }

  copyFileSync(join(PHOTOS, "apple.jpg"), join(photos, "x.jpg", "inside.jpg"));
  copyFileSync(join(PHOTOS, "apple.jpg"), join(photos, "with space.jpg"));
  copyFileSync(join(PHOTOS, "aero1.jpg"), join(photos, "ünïcødé 写真 🌅.jpg"));
  mkdirSync(join(photos, "loop"));
  symlinkSync("..", join(photos, "loop", "up"));
  symlinkSync("self.jpg", join(photos, "loop", "self.jpg"));
});

const INDEXED = [
  "upright.jpg", "orient6.jpg", "orient8.jpg", "sideways.jpg", "first-frame.png", "anim.gif", "anim.webp", "cmyk.jpg",
  "sixteen-bit.png", "grey-alpha.png", "one-pixel.png", "thin.png", "wide.jpg", "inside.jpg", "with space.jpg",
  "ünïcødé 写真 🌅.jpg",
];

async function withStore<T>(work: (store: IndexStore) => Promise<T>): Promise<T> {
  const store = await IndexStore.open(index, { readOnly: true });
  try {
    return await work(store);
  } finally {
    await store.close();
  }
}

/** Each image's embedding and boxes, by file name. */
async function catalogByName() {
  return withStore(async (store) => {
    const out = new Map<string, { vector: Float32Array; cars: number[][]; faces: number[][] }>();
    for (const f of (await store.knownFiles()).values()) {
      if (f.status !== "indexed") continue;
      const boxes = async (table: string, where = "") =>
        (await store.read(`SELECT x0, y0, x1, y1 FROM ${table} WHERE image_id = $1 ${where} ORDER BY x0`, [f.id])).map((r) => r.map(Number));
      out.set(basename(f.path), {
        vector: (await store.getEmbedding(f.id))!,
        cars: await boxes("objects", "AND label = 'car'"),
        faces: await boxes("faces"),
      });
    }
    return out;
  });
}

const cosine = (a: Float32Array, b: Float32Array) => {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) (dot += a[i]! * b[i]!), (na += a[i]! ** 2), (nb += b[i]! ** 2);
  return dot / Math.sqrt(na * nb);
};

/** One box each, the same to within a few pixels (JPEG and GIF re-encoding move edges a little). */
function expectSameBoxes(actual: number[][], expected: number[][]) {
  expect(actual).toHaveLength(1);
  expect(expected).toHaveLength(1);
  actual[0]!.forEach((v, i) => expect(Math.abs(v - expected[0]![i]!)).toBeLessThan(4));
}

const names = (r: { hits: { path: string }[] }) => r.hits.map((h) => basename(h.path)).sort();

describe("imgd index over odd inputs", () => {
  test("indexes every usable file, records each unusable one with its reason, and does not crash", async () => {
    const report = await imgdJson(indexArgs);
    expect(report.embedded).toBe(INDEXED.length);
    expect(report.failed).toBe(Object.keys(FAILURES).length);
    expect(report.scanSkipped.map((s: { path: string; reason: string }) => [basename(s.path), s.reason])).toEqual([["self.jpg", "broken-symlink"]]);

    const info = await imgdJson(["info", "--index", index, "--errors"]);
    const reasons = Object.fromEntries(info.failures.map((f: { path: string; reason: string }) => [basename(f.path), f.reason]));
    expect(reasons).toEqual(FAILURES);
    // One line per failure, even for a name with a newline in it.
    const text = await imgd(["info", "--index", index, "--errors"]);
    const lines = text.stdout.trimEnd().split("\n").slice(text.stdout.split("\n").findIndex((l) => l.startsWith("disk")) + 1);
    expect(lines.map((l) => l.split(" ")[0]).sort()).toEqual(Object.values(FAILURES).sort());
    expect(text.stdout).toContain(JSON.stringify(join(photos, "broken\nname.jpg")));
  }, 120_000);

  test("an EXIF-rotated photo has the vector and boxes of its upright copy; one turned without the tag does not", async () => {
    const byName = await catalogByName();
    const upright = byName.get("upright.jpg")!;
    for (const name of ["orient6.jpg", "orient8.jpg"]) {
      const turned = byName.get(name)!;
      expect(cosine(turned.vector, upright.vector)).toBeGreaterThan(0.99);
      expectSameBoxes(turned.cars, upright.cars);
      expectSameBoxes(turned.faces, upright.faces);
    }
    expect(cosine(byName.get("sideways.jpg")!.vector, upright.vector)).toBeLessThan(0.95);
    // Animated images are their first frame.
    const first = byName.get("first-frame.png")!;
    for (const name of ["anim.gif", "anim.webp"]) {
      expect(cosine(byName.get(name)!.vector, first.vector)).toBeGreaterThan(0.99);
      expectSameBoxes(byName.get(name)!.cars, first.cars);
    }
  }, 60_000);

  test("query --has and dups work on the index", async () => {
    const base = ["--index", index, "-k", "50"];
    expect(names(await imgdJson(["query", ...base, "--has", "car"]))).toEqual(
      expect.arrayContaining(["anim.gif", "anim.webp", "first-frame.png", "orient6.jpg", "orient8.jpg", "upright.jpg"]),
    );
    // The blue frames after the first are not looked at.
    expect(names(await imgdJson(["query", ...base, "--has", "person"]))).not.toEqual(expect.arrayContaining(["anim.gif"]));
    const unicode = await imgdJson(["query", "blue", ...base, "--path-prefix", join(photos, "ünïcødé")]);
    expect(names(unicode)).toEqual(["ünïcødé 写真 🌅.jpg"]);

    const dups = await imgdJson(["dups", "--index", index]);
    const groups = (gs: { images: { path: string }[] }[]) => gs.map((g) => g.images.map((i) => basename(i.path)).sort());
    expect(groups(dups.exact.groups)).toEqual([["inside.jpg", "with space.jpg"]]);
    expect(groups(dups.near.groups)).toEqual(expect.arrayContaining([["orient6.jpg", "orient8.jpg", "upright.jpg"]]));
  }, 60_000);

  test("a second run reads nothing again but the file it could not read", async () => {
    const report = await imgdJson(indexArgs);
    const retried = asRoot ? 0 : 1;
    const total = INDEXED.length + Object.keys(FAILURES).length;
    expect([report.unchanged, report.embedded, report.analysed, report.failed]).toEqual([total - retried, 0, 0, retried]);
  }, 60_000);
});
