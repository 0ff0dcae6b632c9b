import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { copyPhotos, imgd, imgdJson, MODELS, PHOTOS, REPO, tempDir } from "./cli-harness.ts";

// Real photos plus one planted picture whose colour the test model knows for certain.
const PHOTO_NAMES = ["orange.jpg", "apple.jpg", "chelsea.png", "fruits.jpg", "rocket.jpg", "smarties.png", "yellow.png"];

describe("imgd index + query on real photos with the test model", () => {
  const root = tempDir("cli");
  const photos = join(root, "photos");
  const index = join(root, "index");
  let first: any;

  beforeAll(async () => {
    rmSync(photos, { recursive: true, force: true });
    require("node:fs").mkdirSync(photos, { recursive: true });
    copyPhotos(PHOTO_NAMES.filter((n) => n !== "yellow.png"), photos);
    await loadSharp()({ create: { width: 320, height: 240, channels: 3, background: { r: 250, g: 220, b: 20 } } })
      .png()
      .toFile(join(photos, "yellow.png"));
    writeFileSync(join(photos, "empty.jpg"), "");
    writeFileSync(join(photos, "notes.jpg"), "this is a text file, not a JPEG\n".repeat(20));
    writeFileSync(join(photos, "truncated.jpg"), readFileSync(join(PHOTOS, "orange.jpg")).subarray(0, 2000));
    first = await imgdJson(["index", photos, "--index", index, "--model", "test-clip", "--batch", "4"]);
  });

  test("the first run embeds every photo and records each bad file instead of stopping", () => {
    expect(first.scanned).toBe(PHOTO_NAMES.length + 3);
    expect(first.embedded).toBe(PHOTO_NAMES.length);
    expect(first.failed).toBe(3);
    expect(first.interrupted).toBe(false);
    expect(first.stages.map((s: any) => s.stage)).toEqual(["scan", "open", "plan", "read", "hash", "decode", "preprocess", "infer", "write"]);
  });

  test("info --errors names each bad file with its reason", async () => {
    const info = await imgdJson(["info", "--index", index, "--errors"]);
    expect(info.indexed).toBe(PHOTO_NAMES.length);
    const byPath = Object.fromEntries(info.failures.map((f: any) => [f.path.split("/").pop(), f.reason]));
    expect(byPath["empty.jpg"]).toBe("empty-file");
    expect(byPath["notes.jpg"]).toBe("not-an-image");
    expect(["truncated", "corrupt"]).toContain(byPath["truncated.jpg"]);
  });

  test("a text query returns k hits ordered by score, the yellow picture first for 'a yellow car'", async () => {
    const r = await imgdJson(["query", "a yellow car", "--index", index, "-k", "3"]);
    expect(r.hits).toHaveLength(3);
    const scores = r.hits.map((h: any) => h.score);
    expect([...scores].sort((a, b) => b - a)).toEqual(scores);
    expect(r.hits[0].path).toBe(join(photos, "yellow.png"));
  });

  test("an image query finds the same photo first with similarity ~1", async () => {
    const r = await imgdJson(["query", "--image", join(PHOTOS, "chelsea.png"), "--index", index, "-k", "2"]);
    expect(r.hits[0].path).toBe(join(photos, "chelsea.png"));
    expect(r.hits[0].score).toBeGreaterThan(0.99);
  });

  test("--copy-to writes the matches under the users' naming scheme", async () => {
    const out = join(root, "picked");
    await imgdJson(["query", "red", "--index", index, "-k", "2", "--copy-to", out]);
    const names = readdirSync(out).sort();
    expect(names).toHaveLength(2);
    for (const n of names) expect(n).toMatch(/^match_\d{8}_\d{6}_rank00[12]\.(jpg|png)$/);
  });

  test("a second run skips unchanged files, and touched, moved, deleted and edited files are handled", async () => {
    // Without --model an existing index is updated with its own model, not the default one.
    const again = await imgdJson(["index", photos, "--index", index]);
    expect(again.unchanged).toBe(PHOTO_NAMES.length + 3);
    expect(again.embedded).toBe(0);

    const before = await imgdJson(["query", "--image", join(PHOTOS, "rocket.jpg"), "--index", index, "-k", "1"]);
    utimesSync(join(photos, "apple.jpg"), new Date(), new Date(Date.now() + 5000));
    renameSync(join(photos, "rocket.jpg"), join(photos, "rocket-moved.jpg"));
    rmSync(join(photos, "fruits.jpg"));
    writeFileSync(join(photos, "smarties.png"), readFileSync(join(PHOTOS, "coffee.png")));
    const third = await imgdJson(["index", photos, "--index", index, "--model", "test-clip"]);
    expect(third.touched).toBe(1);
    expect(third.moved).toBe(1);
    expect(third.removed).toBe(1);
    expect(third.embedded).toBe(1);

    const after = await imgdJson(["query", "--image", join(PHOTOS, "rocket.jpg"), "--index", index, "-k", "1"]);
    expect(after.hits[0].path).toBe(join(photos, "rocket-moved.jpg"));
    expect(after.hits[0].id).toBe(before.hits[0].id);
    const coffee = await imgdJson(["query", "--image", join(PHOTOS, "coffee.png"), "--index", index, "-k", "1"]);
    expect(coffee.hits[0].path).toBe(join(photos, "smarties.png"));
    const info = await imgdJson(["info", "--index", index]);
    expect(info.indexed).toBe(PHOTO_NAMES.length - 1);
  });

  test("every run appended one line to the job log", () => {
    const lines = readFileSync(join(index, "jobs.jsonl"), "utf8").trim().split("\n");
    expect(lines.length).toBeGreaterThanOrEqual(3);
    for (const l of lines) expect(JSON.parse(l).job).toBe("index");
  });
});

describe("clear errors", () => {
  test("a missing model names the file and the command that fixes it", async () => {
    const dir = tempDir("nomodel");
    const r = await imgd(["index", dir, "--index", join(dir, "i"), "--model", "clip-vit-b32", "--models", join(dir, "m")], {
      env: { IMGD_MODELS: join(dir, "none"), HOME: dir },
      cwd: dir,
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("image.onnx");
    expect(r.stderr).toContain("imgd models pull clip-vit-b32");
  });

  test("querying where no index exists says so", async () => {
    const dir = tempDir("noindex");
    const r = await imgd(["query", "cat", "--index", join(dir, "nothing")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/no index/i);
  });

  test("an unknown flag is a usage error with exit code 2, followed by that command's usage only", async () => {
    const r = await imgd(["query", "cat", "--bogus"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("bogus");
    expect(r.stderr).toContain("imgd query \"TEXT\"");
    expect(r.stderr).not.toContain("imgd index DIR");
  });

  test("index takes --memory-target-mb as serve and worker do: a number of MB, 0 for no governor", async () => {
    const dir = tempDir("memtarget");
    copyPhotos(["apple.jpg"], dir);
    const bad = await imgd(["index", dir, "--index", join(dir, "i"), "--model", "test-clip", "--memory-target-mb", "lots"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("memory-target-mb");
    const off = await imgd(["index", dir, "--index", join(dir, "i"), "--model", "test-clip", "--memory-target-mb", "0", "-q"]);
    expect(off.code).toBe(0);
  });

  test("a file name with a newline in it is printed quoted, one line per hit", async () => {
    const dir = tempDir("newline");
    copyPhotos(["apple.jpg"], dir);
    renameSync(join(dir, "apple.jpg"), join(dir, "a\nb.jpg"));
    await imgdJson(["index", dir, "--index", join(dir, "i"), "--model", "test-clip"]);
    const r = await imgd(["query", "red", "--index", join(dir, "i"), "-k", "1"]);
    expect(r.stdout.trim().split("\n")).toHaveLength(1);
    expect(r.stdout).toContain(JSON.stringify(join(dir, "a\nb.jpg")));
  });

  test("--help after a command prints its usage and exits 0", async () => {
    for (const [command, line] of [["index", "imgd index DIR..."], ["persons", "imgd persons list"], ["deploy", "imgd deploy status|stop|logs"]]) {
      const r = await imgd([command!, "--help"]);
      expect(r.code).toBe(0);
      expect(r.stdout).toContain(line!);
      expect(r.stdout).not.toContain("imgd serve");
    }
  });

  test("Synology's @eaDir thumbnails and --exclude-dir folders are passed over, named in the summary, and leave the index", async () => {
    const dir = tempDir("excluded-dirs");
    copyPhotos(["orange.jpg"], dir);
    for (const sub of ["@eaDir/orange.jpg", "#recycle", "Screenshots"]) mkdirSync(join(dir, sub), { recursive: true });
    copyPhotos(["orange.jpg"], join(dir, "@eaDir/orange.jpg"));
    copyPhotos(["apple.jpg"], join(dir, "#recycle"));
    copyPhotos(["fruits.jpg"], join(dir, "Screenshots"));
    const index = join(dir, "i");
    const first = await imgd(["index", dir, "--index", index, "--model", "test-clip"]);
    expect(first.stdout).toContain("indexed 2,");
    expect(first.stdout).toContain("skipped 2 folders by name: #recycle, @eaDir");
    const second = await imgd(["index", dir, "--index", index, "--model", "test-clip", "--exclude-dir", "Screenshots"]);
    expect(second.code).toBe(0);
    expect(second.stdout).toContain("skipped 3 folders by name: #recycle, @eaDir, Screenshots");
    const hits = await imgdJson(["query", "fruit", "--index", index, "-k", "5", "--json"]);
    expect(hits.hits.map((h: { path: string }) => h.path)).toEqual([join(dir, "orange.jpg")]);
    const bad = await imgd(["index", dir, "--index", index, "--exclude-dir", "trip/Screenshots"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--exclude-dir takes a folder name, not a path: "trip/Screenshots"');
  });

  test("a command's --help lists the defaults of its own flags only", async () => {
    const deploy = (await imgd(["deploy", "--help"])).stdout;
    expect(deploy).toContain("defaults: --threads = cores");
    for (const other of ["--dtype", "--face-detector", "--index ./.imgd", "models are looked up"]) expect(deploy).not.toContain(other);
    const index = (await imgd(["index", "--help"])).stdout;
    for (const own of ["--index ./.imgd", "--dtype i8", "--face-detector scrfd-10g", "models are looked up"]) expect(index).toContain(own);
  });

  test("paths named on the command line or in --list that are no image file are each listed, not dropped in silence", async () => {
    const dir = tempDir("named-paths");
    copyPhotos(["orange.jpg"], dir);
    writeFileSync(join(dir, "notes.txt"), "not a photo\n");
    mkdirSync(join(dir, "album.jpg"));
    const list = join(dir, "list.txt");
    writeFileSync(list, ["orange.jpg", "gone.jpg", "album.jpg", "notes.txt"].join("\n"));
    const fromList = await imgd(["index", "--list", list, "--index", join(dir, "i1"), "--model", "test-clip"]);
    expect(fromList.code).toBe(0);
    expect(fromList.stdout).toContain("indexed 1,");
    expect(fromList.stdout).toContain(
      ["skipped 3 paths given that name no image file:", `  not-a-file ${join(dir, "album.jpg")}`, `  missing ${join(dir, "gone.jpg")}`, `  not-an-image-extension ${join(dir, "notes.txt")}`].join("\n"),
    );
    const named = await imgd(["index", join(dir, "notes.txt"), "--index", join(dir, "i2"), "--model", "test-clip"]);
    expect(named.stdout).toContain(`skipped 1 paths given that name no image file:\n  not-an-image-extension ${join(dir, "notes.txt")}`);
  });

  test("a folder whose name is not valid UTF-8 is not called missing: the error says why it cannot be opened", async () => {
    const dir = tempDir("non-utf8-root");
    const raw = Buffer.concat([Buffer.from(`${dir}/trip-`), Buffer.from([0xff]), Buffer.from("-2024")]);
    mkdirSync(raw as unknown as string);
    const main = join(REPO, "src/cli/main.ts");
    // The name is handed over as the shell gets it from a listing: raw bytes, which no JS string holds.
    const r = Bun.spawnSync(["sh", "-c", `exec "$0" "$1" index "$(printf '%s\\377-2024' "$2")" --index "$3" --model test-clip`, process.execPath, main, `${dir}/trip-`, join(dir, "i")], {
      env: { ...process.env, IMGD_MODELS: MODELS, CI: "true" },
    });
    expect(r.exitCode).toBe(1);
    expect(r.stderr.toString()).toContain("not valid UTF-8");
  });

  test("a stray word where a command takes none is refused and named, not ignored for the default index", async () => {
    const dir = tempDir("stray-word");
    for (const args of [["info", "myindex"], ["serve", "myindex", "--port", "0"], ["dups", "myindex"], ["export", "--parquet", "out.parquet", "myindex"]]) {
      const r = await imgd(args, { cwd: dir });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`imgd: ${args[0]} takes no arguments, got "myindex" (did you mean --index myindex?)`);
    }
    const worker = await imgd(["worker", "http://127.0.0.1:9"], { cwd: dir });
    expect(worker.code).toBe(2);
    expect(worker.stderr).toContain('(did you mean --coordinator http://127.0.0.1:9?)');
    expect(readdirSync(dir)).toEqual([]);
  });

  test("a folder that does not exist is named in the error", async () => {
    const dir = tempDir("nodir");
    const r = await imgd(["index", join(dir, "missing"), "--index", join(dir, "i"), "--model", "test-clip"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(join(dir, "missing"));
    expect(existsSync(join(dir, "i", "vectors.usearch"))).toBe(false);
  });
});

describe("--path-prefix", () => {
  test("with a trailing slash, or as '.', takes that folder only, not its siblings that share its name as a prefix", async () => {
    const dir = tempDir("path-prefix");
    for (const folder of ["trip", "trip-b"]) {
      mkdirSync(join(dir, folder));
      copyPhotos(["orange.jpg"], join(dir, folder));
    }
    const index = join(dir, "i");
    await imgdJson(["index", dir, "--index", index, "--model", "test-clip"]);
    const paths = async (prefix: string, cwd = REPO) =>
      (await imgdJson(["query", "--path-prefix", prefix, "--index", index], { cwd })).hits.map((h: any) => h.path).sort();
    const both = [join(dir, "trip-b", "orange.jpg"), join(dir, "trip", "orange.jpg")].sort();
    expect(await paths(join(dir, "trip"))).toEqual(both);
    expect(await paths(`${join(dir, "trip")}/`)).toEqual([join(dir, "trip", "orange.jpg")]);
    expect(await paths(".", join(dir, "trip"))).toEqual([join(dir, "trip", "orange.jpg")]);
    expect(await paths("trip/", dir)).toEqual([join(dir, "trip", "orange.jpg")]);
  });
});

test("the scan line counts one file as '1 file found'", async () => {
  const dir = tempDir("one-file");
  const photos = join(dir, "photos");
  mkdirSync(photos);
  copyPhotos(["orange.jpg"], photos);
  const run = await imgd(["index", photos, "--index", join(dir, "index"), "--model", "test-clip"]);
  expect(run.code).toBe(0);
  expect(run.stderr).toContain("[index] 1 file found, 0 unchanged, 1 to process");
});
