import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { BUN, CLI, fetchStatus, makePhotos, spawnCli, startCoordinatorProc, tempDir, TOKEN as MESH_TOKEN, type Proc } from "./cluster-harness.ts";
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
  // The job marker a running coordinator writes in its storage; an empty mount point lacks it.
  mkdirSync(join(root, "storage", "coordinator"), { recursive: true });
  writeFileSync(join(root, "storage", "coordinator", "job-id"), "job-1");
  mkdirSync(join(root, "unmounted"));
  writeFileSync(join(root, "in-the-way"), "a file where the storage should be");
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
      `nostore imgd@127.0.0.1:${sshd.port} storage=${join(root, "missing")} dir=other-1\n` +
      `unmounted imgd@127.0.0.1:${sshd.port} storage=${join(root, "unmounted")} dir=other-2\n` +
      `filestore imgd@127.0.0.1:${sshd.port} storage=${join(root, "in-the-way")} dir=other-3\n`,
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

const TOKEN = "s3cret-0123456789";
// 10.0.0.x is never contacted: these tests check what deploy starts, so they do not wait for registration.
const deployArgs = ["--wait-s", "0", "--coordinator", "http://10.0.0.1:7700", "--token", TOKEN, "--binary"];

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
  expect(r.out).toMatch(/^nostore\s+ok\s+missing: \S+\/missing\s+-\s+-$/m);
  expect(r.out).toMatch(/^unmounted\s+ok\s+no job in \S+\/unmounted: is the coordinator's storage mounted there\?\s+-\s+-$/m);
  expect(r.out).toMatch(/^filestore\s+ok\s+not a directory: \S+\/in-the-way\s+-\s+-$/m);
  for (const dir of ["other-1", "other-2", "other-3"]) expect(existsSync(join(home, dir))).toBe(false);
  expect(r.code).toBe(1);
  expect(readFileSync(knownHosts, "utf8")).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${sshd.port} ssh-ed25519 `));

  const dir = join(home, ".imgd");
  expect(readFileSync(join(dir, "imgd"))).toEqual(readFileSync(binary));
  expect(statSync(join(dir, "token")).mode & 0o777).toBe(0o600);
  expect(readFileSync(join(dir, "token"), "utf8")).toBe(`${TOKEN}\n`);
  const log = readFileSync(join(dir, "worker.log"), "utf8");
  expect(log).toContain(
    `fake imgd worker --coordinator http://10.0.0.1:7700 --token-file ${dir}/token --storage ${join(root, "storage")} --threads 2 --path-map /photos=/mnt/photos`,
  );
  // The token never appears on a command line.
  expect(sshd.commands.some((c) => c.includes(TOKEN))).toBe(false);
});

test("a second deploy skips the upload when the sha256 matches and leaves the running worker alone", async () => {
  const before = sshd.commands.length;
  const r = await deploy([...deployArgs, binary]);
  expect(r.out).toMatch(/local\s+ok\s+writable\s+unchanged\s+already running \(pid \d+\)/);
  expect(sshd.commands.slice(before).some((c) => c.includes("sha256sum"))).toBe(true);
  expect(sshd.commands.slice(before).some((c) => c.includes("imgd.upload"))).toBe(false);
});

test("a deploy with other settings restarts the running worker with them, instead of leaving it on the old ones", async () => {
  const before = readFileSync(join(home, ".imgd", "worker.pid"), "utf8").trim();
  const r = await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.2:7700", "--token", TOKEN, "--binary", binary]);
  expect(r.code).toBe(1); // the nostore host
  expect(r.out).toMatch(/local\s+ok\s+writable\s+unchanged\s+restarted \(pid \d+\)/);
  expect(readFileSync(join(home, ".imgd", "worker.pid"), "utf8").trim()).not.toBe(before);
  expect(readFileSync(join(home, ".imgd", "worker.log"), "utf8")).toContain("fake imgd worker --coordinator http://10.0.0.2:7700 ");
  // Another token alone is another setting too; the token stays off every command line.
  const again = await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.2:7700", "--token", `${TOKEN}-new`, "--binary", binary]);
  expect(again.out).toMatch(/local\s+ok\s+writable\s+unchanged\s+restarted \(pid \d+\)/);
  expect(readFileSync(join(home, ".imgd", "token"), "utf8")).toBe(`${TOKEN}-new\n`);
  expect(sshd.commands.some((c) => c.includes(TOKEN))).toBe(false);
  expect((await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.2:7700", "--token", `${TOKEN}-new`, "--binary", binary])).out).toMatch(/local\s+.*already running/);
});

test("a mesh token the coordinator would refuse, or no --binary from a checkout, is a usage error before any host is touched", async () => {
  const before = sshd.commands.length;
  const short = await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.1:7700", "--token", "s3cret", "--binary", binary]);
  expect(short.code).toBe(2);
  expect(short.err).toContain("imgd: the mesh token must be at least 16 characters");
  // This process is bun: without --binary it would upload bun as imgd, and every worker would fail to start.
  const noBinary = await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.1:7700", "--token", TOKEN]);
  expect(noBinary.code).toBe(2);
  expect(noBinary.err).toContain("imgd: from a checkout, deploy needs --binary dist/imgd");
  expect(sshd.commands.length).toBe(before);
});

test("a hosts file that names no host, or an SSH key that is not there, is said so in those words", async () => {
  const empty = join(root, "no-hosts");
  writeFileSync(empty, "# nothing yet\n\n");
  const none = spawnCli(["deploy", "status", "--hosts", empty, "-i", identity]);
  expect(await none.exited).toBe(2);
  expect(none.stderr.join("\n")).toContain(`imgd: ${empty} names no host: one a line, name user@address[:port] storage=DIR ...`);

  const before = sshd.commands.length;
  const missing = join(root, "no-such-key");
  const noKey = spawnCli(["deploy", "status", "local", "--hosts", hostsFile, "-i", missing, "--known-hosts", knownHosts]);
  expect(await noKey.exited).toBe(1);
  expect(noKey.stdout.join("\n")).toBe(`local: cannot read the SSH key ${missing} (no such file): give one with -i KEY, or key= in the hosts file`);
  expect(sshd.commands.length).toBe(before);
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

test("a worker that exits at once is reported by its error line, not the last line of the usage text after it", async () => {
  rmSync(knownHosts, { force: true });
  const failing = join(root, "imgd-failing");
  writeFileSync(failing, `#!/bin/sh\necho 'imgd: --path-map takes FROM=TO'\necho\necho usage:\necho '  imgd worker --coordinator URL'\necho\necho 'defaults: --threads = cores'\nexit 2\n`);
  chmodSync(failing, 0o755);
  const r = await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.1:7700", "--token", TOKEN, "--binary", failing, "--accept-new"]);
  expect(r.out).toMatch(/local\s+ok\s+writable\s+uploaded\s+exited at once: imgd: --path-map takes FROM=TO$/m);
});

describe("deploy waits for its workers to register with the coordinator", () => {
  let coordinator: Proc;
  let url: string;
  let regRoot: string;
  /** One hosts file per host, so each deploy below starts just that one. */
  const hostsFor = (name: string) => join(regRoot, `hosts-${name}`);
  const regDeploy = async (host: string, args: string[]) => {
    const p = spawnCli(["deploy", ...args, "--hosts", hostsFor(host), "-i", identity, "--known-hosts", join(regRoot, "known_hosts"), "--accept-new"]);
    const code = await p.exited;
    return { code, out: p.stdout.join("\n") };
  };

  beforeAll(async () => {
    regRoot = join(root, "registration");
    const photos = join(regRoot, "photos");
    await makePhotos(photos, 3);
    const storage = join(regRoot, "storage");
    mkdirSync(storage, { recursive: true });
    ({ p: coordinator, url } = await startCoordinatorProc([photos], storage, ["--serve"]));
    for (const name of ["real", "fake"]) writeFileSync(hostsFor(name), `${name} imgd@127.0.0.1:${sshd.port} storage=${storage} dir=.imgd-${name}\n`);
  }, 60_000);
  afterAll(async () => {
    for (const name of ["real", "fake"]) await regDeploy(name, ["stop"]);
    coordinator?.proc.kill("SIGKILL");
  });

  test("a worker that registers is named; one that is alive but never registers fails its row", async () => {
    // The real worker, run from this checkout by a wrapper that deploy uploads as the binary; the fake one only sleeps.
    const wrapper = join(regRoot, "imgd-from-source");
    writeFileSync(wrapper, `#!/bin/sh\nexec ${BUN} ${CLI} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const ok = await regDeploy("real", ["--coordinator", url, "--token", MESH_TOKEN, "--binary", wrapper, "--wait-s", "60"]);
    // Three photos: the worker may have done the job and left before deploy's first look.
    expect(ok.out).toMatch(/^real\s+ok\s+writable\s+uploaded\s+started \(pid (\d+)\), registered as \S+(, since left after \d+ files)?$/m);
    expect(ok.code).toBe(0);
    const pid = Number(/started \(pid (\d+)\)/.exec(ok.out)![1]);
    expect((await fetchStatus(url)).workers.map((w) => w.pid)).toContain(pid);

    const silent = await regDeploy("fake", ["--coordinator", url, "--token", MESH_TOKEN, "--binary", binary, "--wait-s", "1"]);
    expect(silent.out).toMatch(/^fake\s+ok\s+writable\s+uploaded\s+started \(pid \d+\), not registered after 1 s: see imgd deploy logs fake$/m);
    expect(silent.code).toBe(1);
  }, 90_000);

  test("a coordinator this machine cannot reach is said so, without failing the workers that may reach it", async () => {
    const r = await regDeploy("fake", ["--coordinator", "http://127.0.0.1:9", "--token", MESH_TOKEN, "--binary", binary, "--wait-s", "5"]);
    expect(r.out).toMatch(/^fake\s+ok\s+writable\s+unchanged\s+restarted \(pid \d+\)$/m);
    expect(r.out).toContain("registration not checked: coordinator http://127.0.0.1:9 unreachable: connection refused");
    expect(r.code).toBe(0);
  });
});
