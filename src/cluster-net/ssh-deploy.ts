// `imgd deploy`: per host, over one verified SSH connection — storage writable? binary current (by sha256)?
// then start `imgd worker` detached (setsid + nohup) with its log and pid beside the binary.
import { createHash } from "node:crypto";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PLATFORM_PROBE, platformMismatch } from "./binary-platform.ts";
import type { DeployHost } from "./hosts-file.ts";
import { sq } from "./remote-shell.ts";
import { SshSession, type SshTarget } from "./ssh-session.ts";
import { jobMarkerPath, SHARDS_DIR } from "./storage-layout.ts";

export interface DeployOptions {
  binaryPath: string;
  coordinator: string;
  token: string;
  identity: string;
  knownHosts: string;
  acceptNew: boolean;
  threads?: number;
}

export interface DeployRow {
  host: string;
  connect: string;
  storage: string;
  binary: string;
  worker: string;
  ok: boolean;
  /** The running worker: its pid and the host name it registers with (the remote's own, not the hosts file's). */
  pid?: number;
  hostname?: string;
}

/** Remote paths: `dir` relative to the login directory unless absolute; "$HOME" is expanded by the shell. */
function remote(host: DeployHost) {
  const dir = host.dir.startsWith("/") ? sq(host.dir) : `"$HOME"/${sq(host.dir)}`;
  return { dir, bin: `${dir}/imgd`, log: `${dir}/worker.log`, pid: `${dir}/worker.pid`, token: `${dir}/token`, args: `${dir}/worker.args` };
}

function target(host: DeployHost, opts: Pick<DeployOptions, "identity" | "knownHosts" | "acceptNew">): SshTarget {
  return {
    host: host.address,
    port: host.port,
    username: host.username,
    privateKeyPath: host.key ?? opts.identity,
    knownHostsPath: opts.knownHosts,
    acceptNew: opts.acceptNew,
  };
}

export function fileSha256(path: string): string {
  return createHash("sha256").update(readFileSync(path)).digest("hex");
}

async function withSession<T>(
  host: DeployHost,
  opts: Pick<DeployOptions, "identity" | "knownHosts" | "acceptNew">,
  work: (s: SshSession) => Promise<T>,
): Promise<T> {
  const session = await SshSession.connect(target(host, opts));
  try {
    return await work(session);
  } finally {
    session.end();
  }
}

/** `sftp` gives remote paths relative to the login directory; the shell expands "$HOME". */
async function realDir(s: SshSession, host: DeployHost): Promise<string> {
  const r = await s.exec(`mkdir -p ${remote(host).dir} && cd ${remote(host).dir} && pwd`);
  if (r.code !== 0) throw new Error(`cannot create ${host.dir}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * Exits 3 when the storage path is missing, 4 when it is not a directory, 5 when a file cannot be written in it, 6
 * when one cannot be written in the coordinator's shards directory there (made by the coordinator's user: another
 * uid, or root squashed to nobody, may not write it); then prints the job id the coordinator wrote there (see
 * jobMarkerPath), if any.
 */
const STORAGE_PROBE = (storage: string) =>
  `s=${sq(storage)}; test -e "$s" || exit 3; test -d "$s" || exit 4; p="$s/.imgd-probe-$$"; ` +
  `echo probe > "$p" || exit 5; rm -f "$p"; ` +
  `if test -d "$s/${SHARDS_DIR}"; then p="$s/${SHARDS_DIR}/.imgd-probe-$$"; echo probe > "$p" || exit 6; rm -f "$p"; fi; ` +
  `cat ${sq(jobMarkerPath(storage))} 2>/dev/null; exit 0`;

/**
 * Why the worker must not be started on this storage, or null. An empty mount point (the share not mounted) is
 * writable but holds no job: a worker started there would only refuse to work once it had registered.
 */
function storageProblem(probe: { code: number; stdout: string; stderr: string }, storage: string): string | null {
  if (probe.code === 3) return `missing: ${storage}`;
  if (probe.code === 4) return `not a directory: ${storage}`;
  if (probe.code === 6) {
    return `shards not writable: ${join(storage, SHARDS_DIR)}${probe.stderr.trim() ? ` (${probe.stderr.trim().split("\n").pop()})` : ""}; the worker's user may not write where the coordinator's user made it (root_squash?)`;
  }
  if (probe.code !== 0) return `not writable: ${storage}${probe.stderr.trim() ? ` (${probe.stderr.trim().split("\n").pop()})` : ""}`;
  if (!probe.stdout.trim()) return `no job in ${storage}: is the coordinator's storage mounted there?`;
  return null;
}

const RUNNING = (pidFile: string) => `p=$(cat ${pidFile} 2>/dev/null) && kill -0 "$p" 2>/dev/null && echo "$p"`;

export async function deployHost(host: DeployHost, opts: DeployOptions, localSha = fileSha256(opts.binaryPath)): Promise<DeployRow> {
  const row: DeployRow = { host: host.name, connect: "-", storage: "-", binary: "-", worker: "-", ok: false };
  try {
    await withSession(host, opts, async (s) => {
      row.connect = "ok";
      const r = remote(host);
      const problem = storageProblem(await s.exec(STORAGE_PROBE(host.storage)), host.storage);
      if (problem) {
        row.storage = problem;
        return;
      }
      row.storage = "writable";
      const dir = await realDir(s, host);
      const mismatch = platformMismatch(opts.binaryPath, (await s.exec(PLATFORM_PROBE)).stdout);
      if (mismatch) {
        row.binary = mismatch;
        return;
      }
      const remoteSha = (await s.exec(`sha256sum ${r.bin} 2>/dev/null`)).stdout.split(/\s+/)[0] ?? "";
      if (remoteSha === localSha) row.binary = "unchanged";
      else {
        // Upload beside, then rename: a worker starting meanwhile never runs a half-written binary.
        await s.upload(opts.binaryPath, `${dir}/imgd.upload`, 0o755);
        const mv = await s.exec(`chmod 755 ${r.dir}/imgd.upload && mv -f ${r.dir}/imgd.upload ${r.bin}`);
        if (mv.code !== 0) throw new Error(`install binary: ${mv.stderr.trim()}`);
        row.binary = "uploaded";
      }
      const args = [
        "worker",
        "--coordinator", opts.coordinator,
        "--token-file", `${dir}/token`,
        "--storage", host.storage,
        ...(host.threads ?? opts.threads ? ["--threads", String(host.threads ?? opts.threads)] : []),
        ...host.pathMaps.flatMap((m) => ["--path-map", m]),
      ].map(sq).join(" ");
      const running = (await s.exec(RUNNING(r.pid))).stdout.trim();
      // A worker keeps what it was started with: a deploy with other settings (a corrected --coordinator URL or
      // token, say) restarts it rather than leave it retrying the old ones.
      const started = running ? (await s.exec(`cat ${r.args} ${r.token} 2>/dev/null`)).stdout : "";
      row.hostname = (await s.exec("hostname")).stdout.trim();
      if (running && row.binary === "unchanged" && started === `${args}\n${opts.token}\n`) {
        row.worker = `already running (pid ${running})`;
        row.pid = Number(running);
        row.ok = true;
        return;
      }
      if (running) await s.exec(`kill -TERM ${running}`);
      // The token goes in a 0600 file, never on a command line other users can read in ps.
      const tmp = mkdtempSync(join(tmpdir(), "imgd-deploy-"));
      try {
        writeFileSync(join(tmp, "token"), `${opts.token}\n`, { mode: 0o600 });
        await s.upload(join(tmp, "token"), `${dir}/token`, 0o600);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      // The worker writes its own pid: `$!` is not it where /bin/sh (bash on some hosts) runs the backgrounded list in a
      // subshell that forks the command, and stop would then signal that subshell and leave the worker running.
      const launch = sq(`echo $$ > ${r.pid} && exec ./imgd ${args}`);
      const start = await s.exec(
        `cd ${r.dir} && printf '%s\\n' ${sq(args)} > ${r.args} && rm -f ${r.pid} && { nohup setsid sh -c ${launch} > ${r.log} 2>&1 < /dev/null & } ; ` +
          `i=0; while [ ! -s ${r.pid} ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done; sleep 0.3; ${RUNNING(r.pid)}`,
      );
      const pid = start.stdout.trim();
      if (!pid) {
        // imgd's own error line, not the usage text a usage error prints after it.
        const lines = (await s.exec(`tail -n 40 ${r.log}`)).stdout.trim().split("\n");
        row.worker = `exited at once: ${lines.find((l) => l.startsWith("imgd: ")) ?? lines.pop() ?? ""}`;
        return;
      }
      row.worker = `${running ? "restarted" : "started"} (pid ${pid})`;
      row.pid = Number(pid);
      row.ok = true;
    });
  } catch (err) {
    if (row.connect === "-") row.connect = err instanceof Error ? err.message : String(err);
    else row.worker = `error: ${err instanceof Error ? err.message : err}`;
  }
  return row;
}

export async function workerStatus(host: DeployHost, opts: Pick<DeployOptions, "identity" | "knownHosts" | "acceptNew">): Promise<string> {
  return withSession(host, opts, async (s) => {
    const pid = (await s.exec(RUNNING(remote(host).pid))).stdout.trim();
    return pid ? `running (pid ${pid})` : "stopped";
  });
}

/** SIGTERM: the worker finishes and commits its batch, then leaves. */
export async function stopWorker(host: DeployHost, opts: Pick<DeployOptions, "identity" | "knownHosts" | "acceptNew">): Promise<string> {
  return withSession(host, opts, async (s) => {
    const pid = (await s.exec(RUNNING(remote(host).pid))).stdout.trim();
    if (!pid) return "not running";
    await s.exec(`kill -TERM ${pid}`);
    for (let i = 0; i < 50; i++) {
      if (!(await s.exec(`kill -0 ${pid} 2>/dev/null && echo up`)).stdout.trim()) return `stopped (pid ${pid})`;
      await Bun.sleep(200);
    }
    return `still draining (pid ${pid}); it stops after its current batch`;
  });
}

export async function workerLogs(host: DeployHost, opts: Pick<DeployOptions, "identity" | "knownHosts" | "acceptNew">, lines = 100): Promise<string> {
  return withSession(host, opts, async (s) => (await s.exec(`tail -n ${Math.floor(lines)} ${remote(host).log}`)).stdout);
}

export function formatDeployTable(rows: DeployRow[]): string {
  const head = ["host", "connect", "storage", "binary", "worker"];
  const cells = rows.map((r) => [r.host, r.connect, r.storage, r.binary, r.worker]);
  const widths = head.map((h, i) => Math.min(60, Math.max(h.length, ...cells.map((c) => c[i]!.length))));
  const line = (c: string[]) => c.map((v, i) => v.padEnd(widths[i]!)).join("  ").trimEnd();
  return [line(head), ...cells.map(line)].join("\n");
}
