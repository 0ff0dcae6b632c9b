// One verified SSH connection (ssh2): key auth only, the host key checked against known_hosts before any
// credential is sent. Offers what deploy needs: run a command, upload a file over SFTP.
import { createReadStream, readFileSync } from "node:fs";
import { addHostKey, checkHostKey } from "./known-hosts.ts";
import { viaSh } from "./remote-shell.ts";
// Imported statically, so that `bun build --compile` bundles ssh2 (and its optional crypto addon) into dist/imgd; a
// runtime require of a package name has no node_modules to resolve from in the binary.
// @ts-expect-error ssh2 ships no types
import ssh2Module from "ssh2";

// ssh2 ships no types; these are the few calls used here.
type SshClient = {
  on(event: string, fn: (...args: any[]) => void): SshClient;
  connect(config: Record<string, unknown>): void;
  exec(cmd: string, cb: (err: Error | undefined, stream: any) => void): void;
  sftp(cb: (err: Error | undefined, sftp: any) => void): void;
  end(): void;
};
const ssh2 = ssh2Module as {
  Client: new () => SshClient;
  utils: { parseKey(data: Buffer | string): any };
};

export interface SshTarget {
  host: string;
  port: number;
  username: string;
  privateKeyPath: string;
  knownHostsPath: string;
  /** Record the key of a host never seen before (OpenSSH's StrictHostKeyChecking=accept-new). */
  acceptNew: boolean;
  timeoutMs?: number;
}

export class HostKeyRefused extends Error {
  name = "HostKeyRefused";
}

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export class SshSession {
  private constructor(private readonly client: SshClient) {}

  static connect(target: SshTarget): Promise<SshSession> {
    let privateKey: Buffer;
    try {
      privateKey = readFileSync(target.privateKeyPath);
    } catch (err) {
      // Node's "ENOENT: no such file or directory, open '…/id_ed25519'" says neither that it is the SSH key nor how to give another.
      const code = (err as NodeJS.ErrnoException).code;
      const why = code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : (err as Error).message;
      return Promise.reject(new Error(`cannot read the SSH key ${target.privateKeyPath} (${why}): give one with -i KEY, or key= in the hosts file`));
    }
    const client = new ssh2.Client();
    let refusal: HostKeyRefused | null = null;
    return new Promise((resolve, reject) => {
      client
        .on("ready", () => resolve(new SshSession(client)))
        .on("error", (err: Error) => reject(refusal ?? err))
        .connect({
          host: target.host,
          port: target.port,
          username: target.username,
          privateKey,
          readyTimeout: target.timeoutMs ?? 10_000,
          hostVerifier: (blob: Buffer) => {
            const parsed = ssh2.utils.parseKey(blob);
            const type: string = parsed instanceof Error ? "unknown" : parsed.type;
            const check = checkHostKey(target.knownHostsPath, target.host, target.port, type, blob);
            if (check === "match") return true;
            if (check === "changed") {
              refusal = new HostKeyRefused(
                `host key of ${target.host}:${target.port} has CHANGED (${type}); refusing to connect. If the host was ` +
                  `reinstalled, remove its old line from ${target.knownHostsPath} and deploy again with --accept-new`,
              );
              return false;
            }
            if (!target.acceptNew) {
              refusal = new HostKeyRefused(
                `host ${target.host}:${target.port} is not in ${target.knownHostsPath}; check its key and rerun with --accept-new to record it`,
              );
              return false;
            }
            addHostKey(target.knownHostsPath, target.host, target.port, type, blob);
            return true;
          },
        });
    });
  }

  /** Runs the sh command `command` on the host, through /bin/sh whatever the user's login shell (see viaSh). */
  exec(command: string): Promise<ExecResult> {
    return new Promise((resolve, reject) => {
      this.client.exec(viaSh(command), (err, stream) => {
        if (err) return reject(err);
        let stdout = "";
        let stderr = "";
        let code = -1;
        stream.on("data", (d: Buffer) => (stdout += d.toString()));
        stream.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        stream.on("exit", (c: number | null) => (code = c ?? -1));
        stream.on("close", () => resolve({ code, stdout, stderr }));
      });
    });
  }

  /** Writes `localPath` to `remotePath` over SFTP (open, write, close). */
  upload(localPath: string, remotePath: string, mode = 0o644): Promise<void> {
    return new Promise((resolve, reject) => {
      this.client.sftp((err, sftp) => {
        if (err) return reject(err);
        const out = sftp.createWriteStream(remotePath, { mode });
        out.on("error", (e: Error) => (sftp.end(), reject(e)));
        out.on("close", () => (sftp.end(), resolve()));
        createReadStream(localPath).pipe(out);
      });
    });
  }

  end(): void {
    this.client.end();
  }
}
