import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import exifr from "exifr";
import { decodeImage } from "../../src/engine/decode.ts";
import { endIdleHeicThreads, heicThreadCounts, heicThreadLimits } from "../../src/engine/heic-decoder.ts";
import { runIndex } from "../../src/engine/index-pipeline.ts";
import { modelSearchDirs, resolveModel } from "../../src/engine/models.ts";
import { loadSharp } from "../../src/engine/native.ts";
import { renderThumbnail } from "../../src/engine/thumbnail.ts";
import { longestEventLoopGap } from "../fixtures/event-loop.ts";
import { imageErrorOf } from "../fixtures/image-error.ts";

// Made by test/fixtures/heic/make-fixtures.ts with Debian's heif-enc (x265) from this photo at 190x126.
const FIXTURES = join(import.meta.dir, "../fixtures/heic");
const PHOTO = join(import.meta.dir, "../../../shared/photos/building.jpg");
// grid.heic is a 2x2 grid of HEVC tiles cropped to the photo's size, as an iPhone stores its photos.
const NAMES = ["photo", "thumb", "ten-bit", "alpha", "rotated", "grid"] as const;
const sharp = loadSharp();
const heifConvert = Bun.which("heif-convert");
const heifEnc = Bun.which("heif-enc");
const fixture = (name: string) => join(FIXTURES, `${name}.heic`);
let dir: string;
let upright: Uint8Array;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "imgd-heic-"));
  upright = new Uint8Array(await sharp(PHOTO).resize(190, 126, { fit: "fill" }).raw().toBuffer());
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function diff(a: Uint8Array, b: Uint8Array): { max: number; mean: number } {
  expect(a.length).toBe(b.length);
  let max = 0;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / a.length };
}

/** heif-convert's (Debian's libheif 1.15 with libde265) PNG of `file`, as 8-bit RGB without its alpha. */
async function heifConvertPixels(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const png = join(dir, `${file.split("/").pop()}.png`);
  const run = Bun.spawnSync([heifConvert!, file, png], { stdout: "pipe", stderr: "pipe" });
  if (run.exitCode !== 0) throw new Error(`heif-convert ${file}: ${run.stderr.toString()}`);
  const { data, info } = await sharp(png).removeAlpha().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height };
}

/** Where the NAL unit of `type` (32 VPS, 33 SPS, 34 PPS) sits in the file's hvcC box (ISO/IEC 14496-15's layout). */
function parameterSet(file: Buffer, type: number): { at: number; length: number } {
  let p = file.indexOf("hvcC") + 4 + 22;
  const arrays = file[p++]!;
  for (let a = 0; a < arrays; a++) {
    const arrayType = file[p]! & 0x3f;
    const count = file.readUInt16BE(p + 1);
    p += 3;
    for (let n = 0; n < count; n++) {
      const length = file.readUInt16BE(p);
      if (arrayType === type) return { at: p + 2, length };
      p += 2 + length;
    }
  }
  throw new Error(`no NAL unit of type ${type} in hvcC`);
}

describe("HEIC coded with HEVC", () => {
  test.skipIf(!heifConvert)("each fixture decodes to heif-convert's pixels, give or take rounding (needs apt-get install libheif-examples)", async () => {
    for (const name of NAMES) {
      const image = await decodeImage(fixture(name));
      const reference = await heifConvertPixels(fixture(name));
      expect([name, image.width, image.height]).toEqual([name, reference.width, reference.height]);
      const { max, mean } = diff(image.data, reference.data);
      // Both are libde265; libheif 1.15 and 1.23 round YCbCr to RGB (and 10 bits to 8) a little differently.
      expect({ name, mean: mean < 1, max: max <= 8 }).toEqual({ name, mean: true, max: true });
    }
  });

  test("the primary image of each fixture is the photo, upright and at its size, as 8-bit RGB", async () => {
    for (const name of NAMES) {
      const image = await decodeImage(fixture(name));
      expect([name, image.format, image.width, image.height, image.sourceWidth, image.sourceHeight]).toEqual([name, "heif", 190, 126, 190, 126]);
      expect(image.data.length).toBe(190 * 126 * 3);
      // x265 at quality 70 stays within a few levels of the photo; a turned, mirrored or thumbnail image would not.
      expect([name, diff(image.data, upright).mean < 6]).toEqual([name, true]);
    }
  });

  test("a HEIC turned by its irot box is turned once, though its EXIF Orientation says 6 too (as an iPhone's does)", async () => {
    const { exif } = await sharp(fixture("rotated")).metadata();
    expect((await exifr.parse(exif!, { pick: ["Orientation"], translateValues: false }))?.Orientation).toBe(6);
    const image = await decodeImage(fixture("rotated"), { targetShortSide: 32 });
    expect([image.sourceWidth, image.sourceHeight]).toEqual([190, 126]);
    expect(image.width).toBeGreaterThan(image.height);
    const full = await decodeImage(fixture("rotated"));
    const twice = new Uint8Array(await sharp(upright, { raw: { width: 190, height: 126, channels: 3 } }).rotate(180).raw().toBuffer());
    expect(diff(full.data, upright).mean).toBeLessThan(diff(full.data, twice).mean / 4);
  });

  test("alpha is dropped without compositing, as for a PNG: the clear right edge keeps its colours", async () => {
    const image = await decodeImage(fixture("alpha"));
    const edge = (data: Uint8Array) => Array.from({ length: 126 }, (_, y) => data.subarray((y * 190 + 189) * 3, (y * 190 + 190) * 3)).flatMap((p) => [...p]);
    const { mean } = diff(Uint8Array.from(edge(image.data)), Uint8Array.from(edge(upright)));
    expect(mean).toBeLessThan(8);
  });

  test("the caller's bytes stay whole: a Buffer from readFile (whose slice() is a view) is not moved to the thread", async () => {
    const bytes = readFileSync(fixture("photo"));
    const copy = Buffer.from(bytes);
    expect((await decodeImage(bytes)).width).toBe(190);
    expect(bytes.buffer.byteLength).toBeGreaterThan(0);
    expect(bytes.equals(copy)).toBe(true);
  });

  test("date taken, camera make and model come from the HEIC's Exif item, as from a JPEG's", async () => {
    const image = await decodeImage(new Uint8Array(readFileSync(fixture("photo"))));
    expect(image.exif).toEqual({ takenAt: "2023-07-14T10:20:30", cameraMake: "Apple", cameraModel: "iPhone 15 Pro" });
  });

  test("a shrink target reduces the decoded pixels to twice the target, and the source size is the full one", async () => {
    const image = await decodeImage(fixture("photo"), { targetShortSide: 32 });
    expect([image.width, image.height, image.sourceWidth, image.sourceHeight]).toEqual([97, 64, 190, 126]);
  });

  test("a HEIC over the pixel limit is refused from its header, without starting a decoding thread", async () => {
    endIdleHeicThreads();
    const started = heicThreadCounts.started;
    const err = await imageErrorOf(() => decodeImage(fixture("photo"), { maxPixels: 190 * 126 - 1 }));
    expect(err.reason).toBe("too-many-pixels");
    expect(heicThreadCounts.started).toBe(started);
  });

  test("a HEIC cut short is truncated, and one whose HEVC configuration is damaged is corrupt, with libheif's reason", async () => {
    const full = readFileSync(fixture("photo"));
    for (const length of [200, 2000, full.length >> 1, full.length - 1]) {
      const path = join(dir, `cut-${length}.heic`);
      writeFileSync(path, full.subarray(0, length));
      for (const input of [new Uint8Array(full.subarray(0, length)), path]) {
        expect(`${length}: ${(await imageErrorOf(() => decodeImage(input))).reason}`).toBe(`${length}: truncated`);
      }
    }
    // The picture parameter set in hvcC zeroed: every box whole and in place, the HEVC stream undecodable.
    const pps = parameterSet(full, 34);
    const damaged = Buffer.from(full).fill(0, pps.at + 2, pps.at + pps.length);
    const err = await imageErrorOf(() => decodeImage(new Uint8Array(damaged)));
    expect(err.reason).toBe("corrupt");
    expect(err.message).toContain("libheif: cannot decode the image");
    // The next good file decodes as before.
    expect((await decodeImage(fixture("photo"))).width).toBe(190);
  });

  test("a thread whose decode failed is ended: its heap may have grown for an image it never finished", async () => {
    const full = readFileSync(fixture("photo"));
    const pps = parameterSet(full, 34);
    const damaged = new Uint8Array(Buffer.from(full).fill(0, pps.at + 2, pps.at + pps.length));
    await decodeImage(fixture("photo"));
    const ended = heicThreadCounts.ended;
    expect((await imageErrorOf(() => decodeImage(damaged))).reason).toBe("corrupt");
    expect(heicThreadCounts.ended).toBe(ended + 1);
    // A good file after it decodes on a fresh thread.
    expect((await decodeImage(fixture("photo"))).width).toBe(190);
  });

  test("the thumbnail of a HEIC is a JPEG of the upright photo", async () => {
    const jpeg = await renderThumbnail(fixture("rotated"), 128);
    const meta = await sharp(jpeg).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 128, 85]);
    const pixels = new Uint8Array(await sharp(jpeg).raw().toBuffer());
    const photo = sharp(upright, { raw: { width: 190, height: 126, channels: 3 } }).resize(128, 85, { fit: "fill" });
    const same = new Uint8Array(await photo.clone().raw().toBuffer());
    const turned = new Uint8Array(await photo.clone().rotate(180).raw().toBuffer());
    expect(diff(pixels, same).mean).toBeLessThan(diff(pixels, turned).mean / 3);
  });
});

test("an index run held to one thread (--threads 1) decodes its HEICs on one thread", async () => {
  const photos = join(dir, "threads-1");
  mkdirSync(photos);
  for (const name of NAMES) cpSync(fixture(name), join(photos, `${name}.heic`));
  endIdleHeicThreads();
  const started = heicThreadCounts.started;
  const model = await resolveModel("test-clip", modelSearchDirs(join(import.meta.dir, "../../models")));
  const report = await runIndex({ roots: [photos], indexDir: join(dir, "threads-1-index"), model, threads: 1 });
  expect(report.embedded).toBe(NAMES.length);
  expect(heicThreadLimits.maxThreads).toBe(1);
  expect(heicThreadCounts.started - started).toBe(1);
  // The next run in the same process (a worker's next batch, the next test file) gets what it asks for, not the
  // lowest any run asked for.
  await runIndex({ roots: [photos], indexDir: join(dir, "threads-2-index"), model, threads: 2 });
  expect(heicThreadLimits.maxThreads).toBe(Math.min(2, 4, availableParallelism()));
});

describe.skipIf(!heifEnc)("HEIC decoding threads (needs heif-enc)", () => {
  let mid: string;
  beforeAll(async () => {
    // 3 MP, which takes the threads a few hundred milliseconds.
    const jpeg = join(dir, "mid.jpg");
    mid = join(dir, "mid.heic");
    await sharp(PHOTO).resize(2000, 1500, { fit: "fill" }).jpeg().toFile(jpeg);
    const run = Bun.spawnSync([heifEnc!, "-q", "50", "-p", "preset=ultrafast", jpeg, "-o", mid], { stdout: "pipe", stderr: "pipe" });
    if (run.exitCode !== 0) throw new Error(run.stderr.toString());
  });

  test("the event loop keeps turning while HEICs decode", async () => {
    await decodeImage(mid); // the wasm compiled once
    const { maxGap, ms: took } = await longestEventLoopGap(() => Promise.all([decodeImage(mid), decodeImage(mid)]), 5);
    // On this thread the loop would stop for a whole decode: `took` or more.
    expect(maxGap).toBeLessThan(took / 3);
  });

  test("a thread whose wasm memory grew past the limit is ended after its image, and the next decode gets a fresh one", async () => {
    const keep = heicThreadLimits.keepHeapBytes;
    try {
      endIdleHeicThreads();
      await decodeImage(mid);
      const ended = heicThreadCounts.ended;
      const started = heicThreadCounts.started;
      // The instance starts at 16 MB, and a 3 MP image takes it past 20 MB (a 12 MP one to ~90 MB).
      heicThreadLimits.keepHeapBytes = 18 * 2 ** 20;
      await decodeImage(mid);
      expect(heicThreadCounts.ended).toBe(ended + 1);
      heicThreadLimits.keepHeapBytes = keep;
      expect((await decodeImage(mid, { targetShortSide: 224 })).sourceWidth).toBe(2000);
      expect(heicThreadCounts.started).toBeGreaterThan(started);
    } finally {
      heicThreadLimits.keepHeapBytes = keep;
    }
  });
});
