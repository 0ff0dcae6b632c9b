import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import {
  hasImageExtension,
  IMAGE_EXTENSIONS,
  isReadFailure,
  readPathList,
  scanRoots,
  type ScanResult,
  skipSummary,
} from "../../src/engine/scan.ts";

const photos = join(import.meta.dir, "../../../shared/photos");
const temp = mkdtempSync(join(tmpdir(), "imgd-scan-"));
afterAll(() => rmSync(temp, { recursive: true, force: true }));

let fixtureCount = 0;
/** A fresh directory holding `files` (relative path -> contents). */
function tree(files: Record<string, string>): string {
  const root = join(temp, `t${fixtureCount++}`);
  mkdirSync(root);
  for (const [rel, body] of Object.entries(files)) {
    mkdirSync(dirname(join(root, rel)), { recursive: true });
    writeFileSync(join(root, rel), body);
  }
  return root;
}

/** Root ignores mode bits, so a chmod 000 directory only blocks an unprivileged reader. */
function permissionsEnforced(lockedDir: string): boolean {
  try {
    readdirSync(lockedDir);
    return false;
  } catch {
    return true;
  }
}

/** Run the scan in a child process as `nobody`, which is how the unreadable case is reached when tests run as root. */
function scanAsUnprivilegedUser(root: string): ScanResult {
  const script = join(temp, "scan-as-nobody.ts");
  writeFileSync(
    script,
    `const { scanRoots } = await import(${JSON.stringify(join(import.meta.dir, "../../src/engine/scan.ts"))});\n` +
      `console.log(JSON.stringify(await scanRoots([${JSON.stringify(root)}])));\n`,
  );
  const asNobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"];
  const child = Bun.spawnSync([...asNobody, process.execPath, script], { cwd: temp });
  if (child.exitCode !== 0) throw new Error(`scan as nobody failed: ${child.stderr.toString()}`);
  return JSON.parse(child.stdout.toString()) as ScanResult;
}

const paths = (r: { files: { path: string }[] }) => r.files.map((f) => f.path);

describe("scanRoots", () => {
  test("finds images in nested directories with absolute paths, sizes and mtimes, ignoring other files", async () => {
    const root = tree({ "a.jpg": "12345", "x/b.png": "1", "x/y/z/c.webp": "12", "x/notes.txt": "hi", "d.jpg.bak": "" });
    const result = await scanRoots([root]);
    expect(paths(result)).toEqual([join(root, "a.jpg"), join(root, "x/b.png"), join(root, "x/y/z/c.webp")]);
    expect(result.files[0]!.size).toBe(5);
    expect(result.files[0]!.mtimeMs).toBe(statSync(join(root, "a.jpg")).mtimeMs);
    expect(result.skipped).toEqual([]);
  });

  test("matches extensions case-insensitively and knows every listed format", async () => {
    const names = [...IMAGE_EXTENSIONS].map((ext, i) => `f${i}.${i % 2 ? ext.toUpperCase() : ext}`);
    const root = tree(Object.fromEntries([...names, "IMG_0001.JPG", "scan.TiF"].map((n) => [n, "x"])));
    const result = await scanRoots([root]);
    expect(result.files.length).toBe(IMAGE_EXTENSIONS.size + 2);
    expect(hasImageExtension("/a/b/Photo.HEIC")).toBe(true);
    expect(hasImageExtension("/a/b/photo.jpgx")).toBe(false);
  });

  test("picks up Windows bitmaps, the format of many old scanned photos", async () => {
    const root = tree({ "1998/Scan0001.BMP": "b", "1998/Scan0002.bmp": "b", "1998/Scan0003.dib": "b", "1998/Scan0003.bmp.txt": "t" });
    expect(paths(await scanRoots([root]))).toEqual(["Scan0001.BMP", "Scan0002.bmp", "Scan0003.dib"].map((n) => join(root, "1998", n)));
  });

  test("skips hidden files and directories unless asked to include them", async () => {
    const root = tree({ "seen.jpg": "x", ".hidden.jpg": "x", ".thumbs/t.jpg": "x", "sub/.git/objects/o.png": "x" });
    expect(paths(await scanRoots([root]))).toEqual([join(root, "seen.jpg")]);
    expect(paths(await scanRoots([root], { includeHidden: true }))).toEqual([
      join(root, ".hidden.jpg"),
      join(root, ".thumbs/t.jpg"),
      join(root, "seen.jpg"),
      join(root, "sub/.git/objects/o.png"),
    ]);
  });

  test("passes over NAS and OS system folders and the names asked, at any depth, unless one is a root", async () => {
    const root = tree({
      "a.jpg": "x",
      "2024/@eaDir/a.jpg/SYNOPHOTO_THUMB_XL.jpg": "x",
      "2024/b.jpg": "x",
      "#recycle/old.jpg": "x",
      "trip/__MACOSX/c.jpg": "x",
      "trip/Screenshots/s.png": "x",
      "trip/c.jpg": "x",
    });
    const result = await scanRoots([root], { excludeNames: ["Screenshots"] });
    expect(paths(result)).toEqual([join(root, "2024/b.jpg"), join(root, "a.jpg"), join(root, "trip/c.jpg")]);
    expect(result.skipped).toEqual(
      ["#recycle", "2024/@eaDir", "trip/Screenshots", "trip/__MACOSX"].map((rel) => ({ path: join(root, rel), reason: "excluded-dir" })),
    );
    // A passed-over folder is the scan's choice, not a failure to read it: nothing catalogued under it is kept for it.
    expect(result.scope!.unreadable).toEqual([]);
    expect(paths(await scanRoots([join(root, "#recycle")]))).toEqual([join(root, "#recycle/old.jpg")]);
  });

  test("picks up camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, RW2, ORF), but passes over one beside a processed image of its name, as rclip does", async () => {
    const root = tree({
      "IMG_0001.CR2": "r",
      "IMG_0001.JPG": "j",
      "DSC_0002.nef": "r",
      "DSC_0002.jpeg": "j",
      "_DSC0003.ARW": "r",
      "_DSC0003.HEIC": "j",
      "scan.dng": "r",
      "scan.DNG.jpg": "j",
      "solo.Dng": "r",
      "other/IMG_0001.CR2": "r",
      "pair.dng": "r",
      "pair.arw": "r",
      "IMG_0004.CR3": "r",
      "IMG_0004.jpg": "j",
      "DSCF0005.RAF": "r",
      "DSCF0005.JPG": "j",
      "P1000006.RW2": "r",
      "P1000006.JPG": "j",
      "P7000007.ORF": "r",
      "P7000007.jpg": "j",
      "solo.cr3": "r",
      "solo.raf": "r",
      "solo.rw2": "r",
      "solo.orf": "r",
    });
    const result = await scanRoots([root]);
    const kept = ["DSC_0002.jpeg", "IMG_0001.JPG", "_DSC0003.HEIC", "other/IMG_0001.CR2", "pair.arw", "pair.dng", "scan.DNG.jpg", "scan.dng", "solo.Dng",
      "IMG_0004.jpg", "DSCF0005.JPG", "P1000006.JPG", "P7000007.jpg", "solo.cr3", "solo.raf", "solo.rw2", "solo.orf"];
    expect(paths(result)).toEqual(kept.map((n) => join(root, n)).sort());
    const passed = ["DSC_0002.nef", "IMG_0001.CR2", "_DSC0003.ARW", "IMG_0004.CR3", "DSCF0005.RAF", "P1000006.RW2", "P7000007.ORF"].map((n) => join(root, n)).sort();
    expect(result.skipped).toEqual(passed.map((path) => ({ path, reason: "raw-beside-processed" })));
    expect(result.skipped.filter(isReadFailure)).toEqual([]);
    // Named as a root, a RAW is the user's choice and is taken beside its JPEG.
    expect(paths(await scanRoots([join(root, "IMG_0001.CR2")]))).toEqual([join(root, "IMG_0001.CR2")]);
  });

  test("does not follow symlinked files or directories by default and lists them as skipped", async () => {
    const outside = tree({ "far.jpg": "x", "deep/far2.png": "x" });
    const root = tree({ "real.jpg": "x" });
    symlinkSync(join(outside, "far.jpg"), join(root, "link.jpg"));
    symlinkSync(outside, join(root, "linkdir"));
    symlinkSync(join(outside, "nowhere.txt"), join(root, "dangling.txt"));
    const result = await scanRoots([root]);
    expect(paths(result)).toEqual([join(root, "real.jpg")]);
    expect(result.skipped).toEqual([
      { path: join(root, "link.jpg"), reason: "symlink" },
      { path: join(root, "linkdir"), reason: "symlink" },
    ]);
  });

  test("follows symlinked files and directories when asked, keeping one path per underlying file", async () => {
    const outside = tree({ "far.jpg": "x", "deep/far2.png": "xy" });
    const root = tree({ "real.jpg": "x" });
    symlinkSync(join(outside, "far.jpg"), join(root, "link.jpg"));
    symlinkSync(outside, join(root, "linkdir"));
    symlinkSync(join(root, "real.jpg"), join(root, "same-as-real.jpg"));
    symlinkSync(join(root, "gone.jpg"), join(root, "broken.jpg"));
    const result = await scanRoots([root], { followSymlinks: true });
    expect(paths(result)).toEqual([
      join(root, "link.jpg"),
      join(root, "linkdir/deep/far2.png"),
      join(root, "real.jpg"),
    ]);
    expect(result.files[1]!.size).toBe(2);
    expect(result.skipped).toEqual([{ path: join(root, "broken.jpg"), reason: "broken-symlink" }]);
  });

  test("a followed directory also reached directly reports its files at their own paths, not the link's", async () => {
    const root = tree({ "z/photo.jpg": "x", "z/inner/deep.png": "x" });
    symlinkSync(join(root, "z"), join(root, "a-link"));
    for (let run = 0; run < 3; run++) {
      const result = await scanRoots([root], { followSymlinks: true });
      expect(paths(result)).toEqual([join(root, "z/inner/deep.png"), join(root, "z/photo.jpg")]);
    }
  });

  test("a directory symlink cycle terminates and each file is reported once", async () => {
    const root = tree({ "a/one.jpg": "x", "a/b/two.jpg": "x" });
    symlinkSync(join(root, "a"), join(root, "a/b/back-to-a"));
    symlinkSync(root, join(root, "a/b/back-to-root"));
    const result = await scanRoots([root], { followSymlinks: true });
    expect(paths(result)).toEqual([join(root, "a/b/two.jpg"), join(root, "a/one.jpg")]);
    expect(paths(await scanRoots([root]))).toEqual([join(root, "a/b/two.jpg"), join(root, "a/one.jpg")]);
  });

  test("returns the same byte-ordered list on every run", async () => {
    const files: Record<string, string> = {};
    for (let d = 0; d < 12; d++) for (let f = 0; f < 30; f++) files[`d${d}/IMG_${(f * 7919) % 1000}.jpg`] = "x";
    files["Z.jpg"] = files["a.jpg"] = files["_.jpg"] = files["É.jpg"] = "x";
    const root = tree(files);
    const first = paths(await scanRoots([root]));
    const second = paths(await scanRoots([root]));
    expect(first.length).toBe(12 * 30 + 4);
    expect(second).toEqual(first);
    expect(first).toEqual([...first].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0)));
  });

  test("records an unreadable directory in skipped instead of throwing", async () => {
    const root = tree({ "ok.jpg": "x", "locked/secret.jpg": "x" });
    chmodSync(temp, 0o755);
    chmodSync(join(root, "locked"), 0o000);
    try {
      const result = permissionsEnforced(join(root, "locked"))
        ? await scanRoots([root])
        : scanAsUnprivilegedUser(root);
      expect(paths(result)).toEqual([join(root, "ok.jpg")]);
      expect(result.skipped).toEqual([{ path: join(root, "locked"), reason: "EACCES" }]);
    } finally {
      chmodSync(join(root, "locked"), 0o755);
    }
  });

  test("a file or folder whose name is not valid UTF-8 is reported as such, not dropped silently", async () => {
    const root = tree({ "ok.jpg": "x", "notes\uFFFD.txt": "x", "real\uFFFD.jpg": "x" });
    const raw = (name: number[]) => Buffer.concat([Buffer.from(`${root}/`), Buffer.from(name)]);
    writeFileSync(raw([0x61, 0xff, 0x2e, 0x6a, 0x70, 0x67]), "x"); // a\xff.jpg
    writeFileSync(raw([0x62, 0xfe, 0x2e, 0x74, 0x78, 0x74]), "x"); // b\xfe.txt: not an image, not reported
    mkdirSync(raw([0x64, 0xff]));
    writeFileSync(Buffer.concat([raw([0x64, 0xff]), Buffer.from("/inside.jpg")]), "x");
    const result = await scanRoots([root]);
    // A name that holds U+FFFD itself is a name like any other.
    expect(paths(result)).toEqual([join(root, "ok.jpg"), join(root, "real\uFFFD.jpg")]);
    expect(result.skipped).toEqual([
      { path: join(root, "a\uFFFD.jpg"), reason: "name-not-utf8" },
      { path: join(root, "d\uFFFD"), reason: "name-not-utf8" },
    ]);
    expect(result.scope!.unreadable).toEqual([]);
  });

  test("takes a root that is an image file as is and skips a root file that is not an image", async () => {
    const root = tree({ "ok.jpg": "x", "readme.txt": "x" });
    const result = await scanRoots([join(root, "ok.jpg"), join(root, "readme.txt"), root]);
    expect(paths(result)).toEqual([join(root, "ok.jpg")]);
    expect(result.skipped).toEqual([{ path: join(root, "readme.txt"), reason: "not-an-image-extension" }]);
  });

  test("rejects a root that does not exist, naming it", async () => {
    const missing = join(temp, "no-such-dir");
    await expect(scanRoots([temp, missing])).rejects.toThrow(`no such file or directory: ${missing}`);
  });

  test("resolves relative roots and normalises paths", async () => {
    const root = tree({ "p/q.jpg": "x" });
    const result = await scanRoots([join(root, "p", "..", "p", ".")]);
    expect(paths(result)).toEqual([join(root, "p/q.jpg")]);
  });

  test("scans the shared photo set", async () => {
    const result = await scanRoots([photos]);
    expect(result.files.length).toBe(18);
    expect(result.files.every((f) => f.size > 0 && f.path.startsWith(photos))).toBe(true);
  });
});

describe("readPathList", () => {
  test("reads absolute and list-relative paths, ignoring comments and blank lines, tolerating CRLF", async () => {
    const root = tree({ "list/a.jpg": "x", "other/b.PNG": "xy", "list/c.txt": "x" });
    const listFile = join(root, "list/files.txt");
    const lines = [
      "# photos to index",
      "a.jpg",
      "",
      "../other/b.PNG",
      `${join(root, "list/a.jpg")}`,
      "  ",
      "gone.jpg",
      "c.txt",
      "#a commented.jpg",
    ];
    writeFileSync(listFile, lines.join("\r\n") + "\r\n");
    const result = await readPathList(listFile);
    const stats = (path: string) => ({ path, mtimeMs: statSync(path).mtimeMs, ctimeMs: statSync(path).ctimeMs });
    expect(result.files).toEqual([
      { size: 1, ...stats(join(root, "list/a.jpg")) },
      { size: 2, ...stats(join(root, "other/b.PNG")) },
    ]);
    expect(result.skipped).toEqual([
      { path: join(root, "list/c.txt"), reason: "not-an-image-extension" },
      { path: join(root, "list/gone.jpg"), reason: "missing" },
    ]);
  });

  test("a missing list file is an error naming it", async () => {
    const missing = join(temp, "no-list.txt");
    await expect(readPathList(missing)).rejects.toThrow(missing);
  });
});

test("skipSummary names in one line what a scan passed over that a user may not expect, and nothing for a plain tree", async () => {
  const root = join(temp, "summary");
  for (const dir of ["@eaDir", "a/@eaDir", "#recycle", "Screenshots"]) mkdirSync(join(root, dir), { recursive: true });
  for (const file of ["IMG_1.JPG", "IMG_1.CR2", "IMG_2.cr3", "IMG_2.jpg", "a/x.jpg", "@eaDir/t.jpg", "Screenshots/s.png"]) writeFileSync(join(root, file), "x");
  symlinkSync(join(root, "a"), join(root, "link"));
  const scan = await scanRoots([root], { excludeNames: ["Screenshots"] });
  expect(skipSummary(scan.skipped)).toBe(
    'the scan passed over 4 folders by name ("#recycle", "@eaDir" ×2, "Screenshots"), 1 symlink, 2 RAW files beside a JPEG of the same name',
  );
  expect(skipSummary((await scanRoots([join(root, "Screenshots")])).skipped)).toBeNull();
});
