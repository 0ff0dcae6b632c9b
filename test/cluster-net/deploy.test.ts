import { afterAll, beforeAll, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnCli, tempDir } from "./cluster-harness.ts";
import { generateKeys, startSshd, type LoopbackSshd } from "./loopback-sshd.ts";

let root: string;
let home: string;
let sshd: LoopbackSshd;
let hostsFile: string;
let knownHosts: string;
let identity: string;
let binary: string;
const hostKey = generateKeys();

beforeAll(async () => {
  root = tempDir("deploy");
  home = join(root, "home");
  mkdirSync(join(root, "storage"), { recursive: true });
  mkdirSync(home);
  const user = generateKeys();
  identity = join(root, "id_ed25519");
  writeFileSync(identity, user.privateKey, { mode: 0o600 });
  sshd = await startSshd({ hostKey: hostKey.privateKey, userPublicKey: user.publicKey, home });
  knownHosts = join(root, "known_hosts");
  hostsFile = join(root, "hosts");
  writeFileSync(
    hostsFile,
    `# test hosts\nlocal imgd@127.0.0.1:${sshd.port} storage=${join(root, "storage")} threads=2 path-map=/photos=/mnt/photos\n` +
      `nostore imgd@127.0.0.1:${sshd.port} storage=${join(root, "missing")} dir=other\n`,
  );
  // Stands in for the compiled imgd: records how it was started, and drains on SIGTERM like the worker.
  binary = join(root, "imgd");
  writeFileSync(binary, `#!/bin/sh\necho "fake imgd $*"\ntrap 'echo drained; exit 0' TERM\nwhile :; do sleep 0.1; done\n`);
  chmodSync(binary, 0o755);
});
afterAll(async () => {
  await deploy(["stop", "local"]);
  await sshd.close();
});

async function deploy(args: string[], extra: string[] = []) {
  const p = spawnCli(["deploy", ...args, "--hosts", hostsFile, "-i", identity, "--known-hosts", knownHosts, ...extra]);
  const code = await p.exited;
  await Bun.sleep(20);
  return { code, out: p.stdout.join("\n"), err: p.stderr.join("\n") };
}

const deployArgs = ["--coordinator", "http://10.0.0.1:7700", "--token", "s3cret", "--binary"];

test("an unknown host is refused without --accept-new, and nothing runs on it", async () => {
  const r = await deploy([...deployArgs, binary]);
  expect(r.code).toBe(1);
  expect(r.out).toMatch(/local\s+host 127\.0\.0\.1:\d+ is not in .*known_hosts; check its key and rerun with --accept-new/);
  expect(sshd.commands).toEqual([]);
  expect(existsSync(knownHosts)).toBe(false);
});

test("deploy records a new host key, checks storage, uploads the binary and starts the worker detached", async () => {
  const r = await deploy([...deployArgs, binary, "--accept-new"]);
  const lines = r.out.split("\n");
  expect(lines[0]).toMatch(/^host\s+connect\s+storage\s+binary\s+worker$/);
  expect(r.out).toMatch(/local\s+ok\s+writable\s+uploaded\s+started \(pid \d+\)/);
  expect(r.out).toMatch(/nostore\s+ok\s+not writable: .*missing/);
  expect(r.code).toBe(1);
  expect(readFileSync(knownHosts, "utf8")).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));

  const dir = join(home, ".imgd");
  expect(readFileSync(join(dir, "imgd"))).toEqual(readFileSync(binary));
  expect(statSync(join(dir, "token")).mode & 0o777).toBe(0o600);
  expect(readFileSync(join(dir, "token"), "utf8")).toBe("s3cret\n");
  const log = readFileSync(join(dir, "worker.log"), "utf8");
  expect(log).toContain(
    `fake imgd worker --coordinator http://10.0.0.1:7700 --token-file ${dir}/token --storage ${join(root, "storage")} --threads 2 --path-map /photos=/mnt/photos`,
  );
  // The token never appears on a command line.
  expect(sshd.commands.some((c) => c.includes("s3cret"))).toBe(false);
});

test("a second deploy skips the upload when the sha256 matches and leaves the running worker alone", async () => {
  const before = sshd.commands.length;
  const r = await deploy([...deployArgs, binary]);
  expect(r.out).toMatch(/local\s+ok\s+writable\s+unchanged\s+already running \(pid \d+\)/);
  expect(sshd.commands.slice(before).some((c) => c.includes("sha256sum"))).toBe(true);
  expect(sshd.commands.slice(before).some((c) => c.includes("imgd.upload"))).toBe(false);
});

test("deploy status, logs and stop report on and control the remote worker", async () => {
  expect((await deploy(["status", "local"])).out).toMatch(/^local: running \(pid \d+\)$/);
  expect((await deploy(["logs", "local"])).out).toContain("fake imgd worker --coordinator");
  expect((await deploy(["stop", "local"])).out).toMatch(/^local: stopped \(pid \d+\)$/);
  expect((await deploy(["status", "local"])).out).toBe("local: stopped");
  expect(readFileSync(join(home, ".imgd", "worker.log"), "utf8")).toContain("drained");
});

test("a changed host key is refused, even with --accept-new", async () => {
  const other = generateKeys();
  const blob = other.publicKey.split(" ")[1];
  writeFileSync(knownHosts, `[127.0.0.1]:${sshd.port} ssh-ed25519 ${blob}\n`);
  const before = sshd.commands.length;
  const r = await deploy(["status", "local"], ["--accept-new"]);
  expect(r.code).toBe(1);
  expect(r.out).toContain(`host key of 127.0.0.1:${sshd.port} has CHANGED`);
  expect(sshd.commands.length).toBe(before);
  expect(readFileSync(knownHosts, "utf8").split("\n").filter(Boolean)).toHaveLength(1);
});
