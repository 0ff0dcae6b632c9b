import { beforeAll, expect, test } from "bun:test";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { loadSharp } from "../../src/engine/native.ts";
import { copyPhotos, MODELS, REPO, tempDir } from "./cli-harness.ts";
import { spawnCommand, until } from "../cluster-net/cluster-harness.ts";
import { generateKeys, startSshd } from "../cluster-net/loopback-sshd.ts";

let root: string;
/** dist/imgd copied into an empty directory: it must not find the checkout's node_modules. */
let bin: string;
let photos: string;
// A bare environment: no Bun on PATH, a fresh HOME (so the native cache is unpacked from scratch).
let env: Record<string, string>;
const run = (args: string[]) => Bun.spawnSync([bin, ...args], { cwd: join(root, "empty"), env, stdout: "pipe", stderr: "pipe" });
/** As `run`, without blocking this process: the SSH server the command talks to runs in it. */
const runAsync = async (args: string[]) => {
  const p = spawnCommand([bin, ...args], env, join(root, "empty"));
  const code = await p.exited;
  return { code, stdout: p.stdout.join("\n"), stderr: p.stderr.join("\n") };
};

beforeAll(() => {
  const build = Bun.spawnSync([process.execPath, join(REPO, "build.ts")], { cwd: REPO, stdout: "pipe", stderr: "pipe" });
  expect(build.exitCode).toBe(0);
  root = tempDir("binary");
  bin = join(root, "empty", "imgd");
  mkdirSync(join(root, "empty"));
  copyFileSync(join(REPO, "dist/imgd"), bin);
  photos = join(root, "photos");
  mkdirSync(photos);
  copyPhotos(["orange.jpg", "chelsea.png", "rocket.jpg"], photos);
  env = { PATH: "/usr/bin:/bin", HOME: join(root, "home"), IMGD_MODELS: MODELS };
}, 180_000);

test("dist/imgd runs alone from an empty directory: index then query, with neither Bun nor node_modules", () => {
  const indexed = run(["index", photos, "--index", join(root, "idx"), "--model", "test-clip", "--json"]);
  expect(indexed.stderr.toString()).toBe("");
  expect(JSON.parse(indexed.stdout.toString()).embedded).toBe(3);

  const queried = run(["query", "an orange", "--index", join(root, "idx"), "-k", "1", "--json"]);
  expect(queried.exitCode).toBe(0);
  expect(JSON.parse(queried.stdout.toString()).hits[0].path).toBe(join(photos, "orange.jpg"));
}, 120_000);

test("dist/imgd decodes iPhone photos (HEIC, HEVC) with the libheif it carries: index, query, and a JPEG thumbnail from serve", async () => {
  const phone = join(root, "phone");
  mkdirSync(phone);
  copyFileSync(join(REPO, "test/fixtures/heic/photo.heic"), join(phone, "IMG_0001.HEIC"));
  copyFileSync(join(REPO, "test/fixtures/heic/rotated.heic"), join(phone, "IMG_0002.HEIC"));
  const index = join(root, "phone-idx");
  const indexed = run(["index", phone, "--index", index, "--model", "test-clip", "--json"]);
  expect(indexed.stderr.toString()).toBe("");
  expect(JSON.parse(indexed.stdout.toString())).toMatchObject({ embedded: 2, failed: 0 });
  const queried = run(["query", "--image", join(phone, "IMG_0002.HEIC"), "--index", index, "-k", "1", "--json"]);
  const hit = JSON.parse(queried.stdout.toString()).hits[0];
  expect(hit).toMatchObject({ path: join(phone, "IMG_0002.HEIC"), width: 190, height: 126, cameraModel: "iPhone 15 Pro" });

  const serve = spawnCommand([bin, "serve", "--index", index, "--port", "0", "--log", join(root, "phone-serve.log")], env, join(root, "empty"));
  try {
    const url = (await serve.waitFor(/serving http:\/\/127\.0\.0\.1:\d+/)).match(/(http:\/\/127\.0\.0\.1:\d+)/)![1]!;
    const thumb = await fetch(`${url}/api/images/${hit.id}/thumb?size=128`);
    expect([thumb.status, thumb.headers.get("content-type")]).toEqual([200, "image/jpeg"]);
    const meta = await loadSharp()(new Uint8Array(await thumb.arrayBuffer())).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(["jpeg", 128, 85]);
  } finally {
    serve.proc.kill();
    await serve.exited;
  }
}, 120_000);

test("dist/imgd deploys itself over SSH, and the worker it starts does the coordinator's job", async () => {
  const token = "binary-test-token-0123";
  const storage = join(root, "storage");
  mkdirSync(storage);
  const coordinator = spawnCommand(
    [bin, "coordinator", photos, "--storage", storage, "--port", "0", "--bind", "127.0.0.1", "--token", token, "--model", "test-clip", "--serve", "--plain"],
    env,
    join(root, "empty"),
  );
  try {
    const url = `http://127.0.0.1:${JSON.parse(await coordinator.waitFor(/"event":"listening"/)).port}`;
    const hostKey = generateKeys();
    const user = generateKeys();
    const identity = join(root, "id_ed25519");
    writeFileSync(identity, user.privateKey, { mode: 0o600 });
    const home = join(root, "remote-home");
    mkdirSync(home);
    const sshd = await startSshd({ hostKey: hostKey.privateKey, userPublicKey: user.publicKey, home });
    const hosts = join(root, "hosts");
    writeFileSync(hosts, `remote imgd@127.0.0.1:${sshd.port} storage=${storage} threads=1\n`);
    const ssh = ["--hosts", hosts, "-i", identity, "--known-hosts", join(root, "known_hosts")];
    try {
      // No --binary: the compiled imgd uploads itself.
      const deployed = await runAsync(["deploy", ...ssh, "--accept-new", "--coordinator", url, "--token", token, "--wait-s", "60"]);
      expect(deployed.stderr).toBe("");
      expect(deployed.stdout).toMatch(/^remote\s+ok\s+writable\s+uploaded\s+started \(pid \d+\), registered as \S+/m);
      expect(deployed.code).toBe(0);
      await coordinator.waitFor(/merged 1 shard into/, 60_000);
      const hits = await until(async () => {
        const res = await fetch(`${url}/api/search?q=an%20orange&k=1`, { headers: { authorization: `Bearer ${token}` } });
        return res.ok ? ((await res.json()) as { hits: { path: string }[] }).hits : null;
      });
      expect(hits[0]!.path).toBe(join(photos, "orange.jpg"));
    } finally {
      await runAsync(["deploy", "stop", ...ssh]);
      await sshd.close();
    }
  } finally {
    coordinator.proc.kill();
    await coordinator.exited;
  }
}, 180_000);
