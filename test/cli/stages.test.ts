// `imgd index --objects --ocr` then queries filtered by what the stages found, through the real CLI: the test YOLO
// model reports saturated red as "car" and blue as "person"; OCR uses the real PP-OCRv4 models from npm.
import { beforeAll, describe, expect, test } from "bun:test";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { imgd, imgdJson, PHOTOS, tempDir } from "./cli-harness.ts";

const root = tempDir("stages-cli");
const photos = join(root, "photos");
const index = join(root, "index");
const base = ["--index", index];

async function plant(source: string, out: string, opts: { rect?: string; word?: string }) {
  const layers = [];
  if (opts.rect) {
    layers.push({ input: { create: { width: 140, height: 90, channels: 3 as const, background: opts.rect } }, left: 40, top: 40 });
  }
  if (opts.word) {
    const svg = `<svg width="640" height="427" xmlns="http://www.w3.org/2000/svg"><rect x="200" y="260" width="300" height="100" fill="white"/>
      <text x="350" y="332" font-size="64" font-family="DejaVu Sans" font-weight="bold" text-anchor="middle" fill="black">${opts.word}</text></svg>`;
    layers.push({ input: Buffer.from(svg), left: 0, top: 0 });
  }
  await loadSharp()(join(PHOTOS, source)).resize(640, 427, { fit: "fill" }).composite(layers).jpeg({ quality: 92 }).toFile(join(photos, out));
}

beforeAll(async () => {
  mkdirSync(photos, { recursive: true });
  await plant("home.jpg", "red-car.jpg", { rect: "#ff0000" });
  await plant("building.jpg", "exit-sign.jpg", { word: "EXIT" });
  await plant("fruits.jpg", "blue-person-open.jpg", { rect: "#0000ff", word: "OPEN" });
  // No saturated red or blue of its own (which the test detector would call a car or a person), and no text.
  await plant("home.jpg", "plain.jpg", {});
});

describe("imgd index --objects --ocr", () => {
  test("indexes, analyses and counts what it found", async () => {
    const report = await imgdJson([
      "index", photos, ...base, "--model", "test-clip", "--objects", "--object-model", "test-yolo", "--ocr", "--threads", "1",
    ]);
    expect(report.embedded).toBe(4);
    expect(report.found.vehicles).toBeGreaterThanOrEqual(1);
    expect(report.found.people).toBeGreaterThanOrEqual(1);
    expect(report.found.ocr).toBeGreaterThanOrEqual(2);
    expect(report.stages.map((s: { stage: string }) => s.stage)).toEqual(expect.arrayContaining(["objects", "ocr"]));
  }, 240_000);

  test("--has and --text-in filter a text query, alone and together", async () => {
    const names = (r: { hits: { path: string }[] }) => r.hits.map((h) => h.path.split("/").pop()).sort();
    expect(names(await imgdJson(["query", "red", ...base, "--has", "car"]))).toEqual(["red-car.jpg"]);
    expect(names(await imgdJson(["query", ...base, "--has", "person"]))).toEqual(["blue-person-open.jpg"]);
    expect(names(await imgdJson(["query", ...base, "--text-in", "exit"]))).toEqual(["exit-sign.jpg"]);
    expect(names(await imgdJson(["query", "blue", ...base, "--text-in", "open", "--has", "person"]))).toEqual(["blue-person-open.jpg"]);
    expect(names(await imgdJson(["query", ...base, "--text-in", "open", "--has", "car"]))).toEqual([]);
    // Comma-separated labels, as the API takes them: every one must be there.
    expect(names(await imgdJson(["query", ...base, "--has", "person,car"]))).toEqual([]);
    expect(names(await imgdJson(["query", ...base, "--has", "person, person"]))).toEqual(["blue-person-open.jpg"]);
  });

  test("a second run with the same stages analyses nothing again", async () => {
    const report = await imgdJson(["index", photos, ...base, "--model", "test-clip", "--objects", "--object-model", "test-yolo", "--ocr"]);
    expect(report.unchanged).toBe(4);
    expect(report.analysed).toBe(0);
  });

  test("an unknown label and a stage that never ran are clear errors", async () => {
    const typo = await imgd(["query", "red", ...base, "--has", "cra"]);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toContain('did you mean "car"');
    const other = join(root, "no-stages");
    await imgdJson(["index", photos, "--index", other, "--model", "test-clip"]);
    const missing = await imgd(["query", "red", "--index", other, "--has", "car"]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("run imgd index with --objects");
  }, 120_000);
});

// The generated face models: test-scrfd boxes the skin-coloured region, test-arcface embeds the aligned crop's
// pattern. So a skin square with a given pattern is one "person", wherever and on whatever photo it is pasted.
async function face(source: string, out: string, pattern: "stripes" | "dots", left: number, top: number, dir: string) {
  const marks =
    pattern === "stripes"
      ? [30, 60, 90].map((y) => `<rect x="10" y="${y}" width="100" height="12" fill="#202020"/>`).join("")
      : [[30, 40], [80, 40], [55, 100]].map(([x, y]) => `<circle cx="${x}" cy="${y}" r="14" fill="#3050a0"/>`).join("");
  const svg = `<svg width="120" height="140" xmlns="http://www.w3.org/2000/svg"><rect width="120" height="140" fill="rgb(230,180,150)"/>${marks}</svg>`;
  // Darkened, so no skin tone of the photo's own joins the planted face's box.
  const background = await loadSharp()(join(PHOTOS, source)).resize(640, 427, { fit: "fill" }).modulate({ brightness: 0.35 }).toBuffer();
  await loadSharp()(background)
    .composite([{ input: Buffer.from(svg), left, top }])
    .jpeg({ quality: 95 })
    .toFile(join(dir, out));
}

describe("imgd index --faces, imgd faces cluster, imgd persons", () => {
  const faceRoot = tempDir("faces-cli");
  const facePhotos = join(faceRoot, "photos");
  const faceIndex = ["--index", join(faceRoot, "index")];
  const indexFaces = () =>
    imgdJson(["index", facePhotos, ...faceIndex, "--model", "test-clip", "--faces", "--face-detector", "test-scrfd", "--face-embedder", "test-arcface"]);
  const names = (r: { hits: { path: string }[] }) => r.hits.map((h) => h.path.split("/").pop()).sort();

  test("faces are found, clustered into persons, named, queried, and new faces of a named person are assigned", async () => {
    mkdirSync(facePhotos, { recursive: true });
    const backgrounds = ["fruits.jpg", "building.jpg", "home.jpg"];
    for (const [i, bg] of backgrounds.entries()) {
      await face(bg, `alice-${i}.jpg`, "stripes", 60 + i * 90, 40 + i * 60, facePhotos);
      await face(bg, `bob-${i}.jpg`, "dots", 400 - i * 80, 200 - i * 50, facePhotos);
    }
    const first = await indexFaces();
    expect(first.found.faces).toBe(6);

    const clustered = await imgdJson(["faces", "cluster", ...faceIndex, "--min-size", "2", "--min-samples", "2"]);
    expect([clustered.faces, clustered.clusters, clustered.noise]).toEqual([6, 2, 0]);
    const persons = (await imgdJson(["persons", "list", ...faceIndex])).persons as { id: number; faces: number }[];
    expect(persons.length).toBe(2);

    // Name whichever person holds alice-0.jpg.
    const aliceFaces = await imgdJson(["query", ...faceIndex, "--path-prefix", join(facePhotos, "alice-0.jpg")]);
    const imageId = aliceFaces.hits[0].id;
    const { faces } = await imgdJson(["faces", "list", "--image", String(imageId), ...faceIndex]);
    expect(faces.length).toBe(1);
    const personId = faces[0].personId;
    expect(typeof personId).toBe("number");
    expect((await imgd(["persons", "name", String(personId), "Alice", ...faceIndex])).code).toBe(0);

    expect(names(await imgdJson(["query", ...faceIndex, "--person", "alice"]))).toEqual(["alice-0.jpg", "alice-1.jpg", "alice-2.jpg"]);
    expect(names(await imgdJson(["query", "green", ...faceIndex, "--person", "Alice", "-k", "2"])).length).toBe(2);
    // Several persons must all be in a photo: no photo has both Alice and the other one, and each name is checked.
    const other = persons.find((p) => p.id !== personId)!.id;
    expect(names(await imgdJson(["query", ...faceIndex, "--person", "alice", "--person", String(other)]))).toEqual([]);
    expect(names(await imgdJson(["query", ...faceIndex, "--person", String(other)]))).toEqual(["bob-0.jpg", "bob-1.jpg", "bob-2.jpg"]);
    expect((await imgd(["query", ...faceIndex, "--person", "nobody", "--person", "alice"])).stderr).toContain('no person "nobody"');

    await face("fruits.jpg", "alice-new.jpg", "stripes", 300, 250, facePhotos);
    const second = await indexFaces();
    expect(second.embedded).toBe(1);
    expect(names(await imgdJson(["query", ...faceIndex, "--person", "alice"]))).toContain("alice-new.jpg");
    expect(names(await imgdJson(["query", ...faceIndex, "--person", String(personId)]))).toContain("alice-new.jpg");
    // A name nobody has is an error, as an unknown label is, not an empty result.
    const nobody = await imgd(["query", ...faceIndex, "--person", "nobody"]);
    expect(nobody.code).toBe(1);
    expect(nobody.stderr).toContain('no person "nobody"');
  }, 240_000);

  test("photos deleted before the next index take their faces along; an unnamed person left without faces goes, a named one stays", async () => {
    const persons = async () => (await imgdJson(["persons", "list", ...faceIndex])).persons as { id: number; name: string | null; faces: number }[];
    const before = await persons();
    const bob = before.find((p) => p.name === null)!;
    expect(bob.faces).toBe(3);
    const bobImages = (await imgdJson(["query", ...faceIndex, "--person", String(bob.id)])).hits.map((h: { id: number }) => h.id);
    for (const i of [0, 1, 2]) rmSync(join(facePhotos, `bob-${i}.jpg`));
    for (const i of [0, 1, 2]) rmSync(join(facePhotos, `alice-${i}.jpg`));
    expect((await indexFaces()).removed).toBe(6);

    expect((await persons()).map((p) => [p.name, p.faces])).toEqual([["Alice", 1]]);
    const gone = await imgd(["persons", "show", String(bob.id), ...faceIndex]);
    expect(gone.code).toBe(1);
    expect(gone.stderr).toContain(`no person "${bob.id}"`);
    for (const id of bobImages) expect((await imgd(["faces", "list", "--image", String(id), ...faceIndex])).stderr).toContain(`no image ${id}`);
    // Clustering again finds the one face left and changes nothing.
    const again = await imgdJson(["faces", "cluster", ...faceIndex, "--min-size", "2"]);
    expect([again.faces, again.persons.created, again.persons.removed, again.moved]).toEqual([1, 0, 0, 0]);
    expect(names(await imgdJson(["query", ...faceIndex, "--person", "alice"]))).toEqual(["alice-new.jpg"]);
  }, 240_000);
});
