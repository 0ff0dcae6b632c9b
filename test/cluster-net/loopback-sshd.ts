// A real SSH server for the deploy tests, on 127.0.0.1: public-key auth against one user key, `exec` runs the
// command with the user's login shell, bash unless told (child_process), and SFTP serves the few file operations an
// upload needs.
import { spawn } from "node:child_process";
import { closeSync, fchmodSync, fstatSync, openSync, statSync, writeSync, type Stats } from "node:fs";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { resolve } from "node:path";

const ssh2 = createRequire(import.meta.url)("ssh2");
const { OPEN_MODE, STATUS_CODE, flagsToString } = ssh2.utils.sftp;

/**
 * An ed25519 key pair ssh2 can read back. About 1 in 250 pairs that ssh2 1.17 generates under Bun 1.4 carries a
 * 31-byte public key, one byte short, and fails to parse ("Malformed OpenSSH private key"): deploy.test.ts failed
 * in CI that way. Such a pair is thrown away and another drawn.
 */
export function generateKeys(): { privateKey: string; publicKey: string } {
  for (;;) {
    const k = ssh2.utils.generateKeyPairSync("ed25519");
    const readable = [k.private, k.public].every((key: string) => !(ssh2.utils.parseKey(key) instanceof Error));
    if (readable) return { privateKey: k.private, publicKey: k.public };
  }
}

export interface LoopbackSshd {
  port: number;
  /** Commands the server executed, in order. */
  commands: string[];
  close(): Promise<void>;
}

function attrsOf(s: Stats) {
  return { mode: s.mode, uid: s.uid, gid: s.gid, size: s.size, atime: Math.floor(s.atimeMs / 1000), mtime: Math.floor(s.mtimeMs / 1000) };
}

export async function startSshd(opts: { hostKey: string; userPublicKey: string; home: string; loginShell?: string }): Promise<LoopbackSshd> {
  const allowed = ssh2.utils.parseKey(opts.userPublicKey);
  const commands: string[] = [];
  const server = new ssh2.Server({ hostKeys: [opts.hostKey] }, (client: any) => {
    client.on("authentication", (ctx: any) => {
      const keyOk = ctx.method === "publickey" && ctx.key.algo === allowed.type && ctx.key.data.equals(allowed.getPublicSSH());
      if (!keyOk) return ctx.reject(["publickey"]);
      if (ctx.signature && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(["publickey"]);
      ctx.accept();
    });
    client.on("error", () => {});
    client.on("ready", () => {
      client.on("session", (accept: () => any) => {
        const session = accept();
        session.on("exec", (acceptExec: () => any, _reject: unknown, info: { command: string }) => {
          const stream = acceptExec();
          commands.push(info.command);
          // As OpenSSH runs it: `<login shell> -c`. The usual login shell is bash, which forks where dash does not (a
          // backgrounded `a && b` list runs in a subshell, so `$!` is not b's pid); some users have fish or tcsh.
          const shell = opts.loginShell ?? "bash";
          const child = spawn(shell, ["-c", info.command], { cwd: opts.home, env: { ...process.env, HOME: opts.home, SHELL: shell } });
          child.stdout.pipe(stream, { end: false });
          child.stderr.pipe(stream.stderr, { end: false });
          child.on("close", (code) => {
            stream.exit(code ?? 1);
            stream.end();
          });
        });
        session.on("sftp", (acceptSftp: () => any) => serveSftp(acceptSftp(), opts.home));
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    port: (server.address() as AddressInfo).port,
    commands,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

function serveSftp(sftp: any, home: string): void {
  const fds = new Map<number, number>();
  let next = 1;
  const handleOf = (fd: number) => {
    const h = Buffer.alloc(4);
    h.writeUInt32BE(next);
    fds.set(next++, fd);
    return h;
  };
  const fdOf = (h: Buffer) => fds.get(h.readUInt32BE(0));
  const fail = (reqid: number, err: NodeJS.ErrnoException) =>
    sftp.status(reqid, err.code === "ENOENT" ? STATUS_CODE.NO_SUCH_FILE : err.code === "EACCES" ? STATUS_CODE.PERMISSION_DENIED : STATUS_CODE.FAILURE);
  const guarded = (fn: (reqid: number, ...args: any[]) => void) => (reqid: number, ...args: any[]) => {
    try {
      fn(reqid, ...args);
    } catch (err) {
      fail(reqid, err as NodeJS.ErrnoException);
    }
  };
  sftp.on("OPEN", guarded((reqid, path: string, flags: number, attrs: { mode?: number }) => {
    const mode = flagsToString(flags) ?? (flags & OPEN_MODE.WRITE ? "w" : "r");
    sftp.handle(reqid, handleOf(openSync(resolve(home, path), mode, attrs?.mode ?? 0o644)));
  }));
  sftp.on("WRITE", guarded((reqid, handle: Buffer, offset: number, data: Buffer) => {
    writeSync(fdOf(handle)!, data, 0, data.length, offset);
    sftp.status(reqid, STATUS_CODE.OK);
  }));
  sftp.on("CLOSE", guarded((reqid, handle: Buffer) => {
    closeSync(fdOf(handle)!);
    fds.delete(handle.readUInt32BE(0));
    sftp.status(reqid, STATUS_CODE.OK);
  }));
  sftp.on("FSETSTAT", guarded((reqid, handle: Buffer, attrs: { mode?: number }) => {
    if (attrs.mode !== undefined) fchmodSync(fdOf(handle)!, attrs.mode);
    sftp.status(reqid, STATUS_CODE.OK);
  }));
  sftp.on("FSTAT", guarded((reqid, handle: Buffer) => sftp.attrs(reqid, attrsOf(fstatSync(fdOf(handle)!)))));
  sftp.on("STAT", guarded((reqid, path: string) => sftp.attrs(reqid, attrsOf(statSync(resolve(home, path))))));
  sftp.on("LSTAT", guarded((reqid, path: string) => sftp.attrs(reqid, attrsOf(statSync(resolve(home, path))))));
  sftp.on("REALPATH", guarded((reqid, path: string) => {
    const full = resolve(home, path);
    sftp.name(reqid, [{ filename: full, longname: full, attrs: {} }]);
  }));
}
