// OpenSSH runs each exec request through the user's login shell; deploy's commands are sh. With fish or csh/tcsh as
// the login shell, deploy, status, logs and stop must still work (each command goes through /bin/sh, see viaSh).
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { spawnCli, tempDir } from "./cluster-harness.ts";
import { generateKeys, startSshd, type LoopbackSshd } from "./loopback-sshd.ts";

// fish, and one csh (on Debian csh is tcsh); CI machines may have neither.
const shells = ["fish", Bun.which("tcsh") ? "tcsh" : "csh"].filter((s) => Bun.which(s));
if (shells.length === 0) console.log("deploy-login-shell: skipped, none of fish, tcsh, csh is installed on this machine");

describe.skipIf(shells.length === 0).each(shells.length ? shells : ["none"])("with %s as the remote login shell", (shell) => {
  let root: string;
  let home: string;
  let sshd: LoopbackSshd;
  let hostsFile: string;
  let identity: string;
  let binary: string;

  beforeAll(async () => {
    root = tempDir(`deploy-${shell}`);
    home = join(root, "home");
    // A storage path with a quote, a backslash and a `!`: each is quoted anew for the login shell.
    const storage = join(root, "it's\\storage!");
    mkdirSync(join(storage, "coordinator"), { recursive: true });
    writeFileSync(join(storage, "coordinator", "job-id"), "job-1");
    mkdirSync(home);
    const user = generateKeys();
    identity = join(root, "id_ed25519");
    writeFileSync(identity, user.privateKey, { mode: 0o600 });
    sshd = await startSshd({ hostKey: generateKeys().privateKey, userPublicKey: user.publicKey, home, loginShell: Bun.which(shell)! });
    hostsFile = join(root, "hosts");
    writeFileSync(hostsFile, `remote imgd@127.0.0.1:${sshd.port} storage=${storage} path-map=/photos=/mnt/it's\n`);
    binary = join(root, "imgd");
    writeFileSync(binary, `#!/bin/sh\necho "fake imgd $*"\ntrap 'echo drained; exit 0' TERM\nwhile :; do sleep 0.1; done\n`);
    chmodSync(binary, 0o755);
  });
  afterAll(async () => {
    await deploy(["stop"]);
    await sshd?.close();
  });

  async function deploy(args: string[]) {
    const p = spawnCli(["deploy", ...args, "--hosts", hostsFile, "-i", identity, "--known-hosts", join(root, "known_hosts"), "--accept-new"]);
    const code = await p.exited;
    return { code, out: p.stdout.join("\n"), err: p.stderr.join("\n") };
  }

  test("deploy checks storage, uploads the binary and starts the worker; status, logs and stop control it", async () => {
    const r = await deploy(["--wait-s", "0", "--coordinator", "http://10.0.0.1:7700", "--token", "s3cret-0123456789", "--binary", binary]);
    expect(r.err).toBe("");
    expect(r.out).toMatch(/^remote\s+ok\s+writable\s+uploaded\s+started \(pid \d+\)$/m);
    expect(r.code).toBe(0);
    expect(readFileSync(join(home, ".imgd", "worker.log"), "utf8")).toContain(
      `fake imgd worker --coordinator http://10.0.0.1:7700 --token-file ${home}/.imgd/token --storage ${root}/it's\\storage! --path-map /photos=/mnt/it's`,
    );
    expect((await deploy(["status"])).out).toMatch(/^remote: running \(pid \d+\)$/);
    expect((await deploy(["logs"])).out).toContain("fake imgd worker --coordinator");
    expect((await deploy(["stop"])).out).toMatch(/^remote: stopped \(pid \d+\)$/);
    expect((await deploy(["status"])).out).toBe("remote: stopped");
    expect(readFileSync(join(home, ".imgd", "worker.log"), "utf8")).toContain("drained");
    // Every command went through the login shell to /bin/sh.
    expect(sshd.commands.every((c) => c.startsWith("exec /bin/sh -c "))).toBe(true);
  }, 60_000);
});
