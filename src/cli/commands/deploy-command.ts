import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { awaitRegistration } from "../../cluster-net/deploy-registration.ts";
import { readHostsFile } from "../../cluster-net/hosts-file.ts";
import { MIN_TOKEN_LENGTH, resolveToken } from "../../cluster-net/mesh-token.ts";
import { deployHost, fileSha256, formatDeployTable, stopWorker, workerLogs, workerStatus } from "../../cluster-net/ssh-deploy.ts";
import { coordinatorUrlFlag, intFlag, parse, tokenFlags } from "../args.ts";
import { UsageError } from "../usage.ts";

/** `imgd deploy --hosts FILE ...` or `imgd deploy status|stop|logs HOST --hosts FILE`. */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    hosts: { type: "string" },
    coordinator: { type: "string" },
    token: { type: "string" },
    "token-file": { type: "string" },
    binary: { type: "string" },
    identity: { type: "string", short: "i" },
    "known-hosts": { type: "string" },
    "accept-new": { type: "boolean" },
    threads: { type: "string" },
    lines: { type: "string", short: "n" },
    "wait-s": { type: "string" },
  });
  if (!values.hosts) throw new UsageError("deploy needs --hosts FILE");
  const hosts = readHostsFile(resolve(values.hosts));
  if (hosts.length === 0) throw new UsageError(`${values.hosts} names no host: one a line, name user@address[:port] storage=DIR ...`);
  const ssh = {
    identity: resolve(values.identity ?? join(homedir(), ".ssh", "id_ed25519")),
    knownHosts: resolve(values["known-hosts"] ?? join(homedir(), ".ssh", "known_hosts")),
    acceptNew: values["accept-new"] === true,
  };
  const [action, hostName] = positionals;
  if (action) {
    if (!["status", "stop", "logs"].includes(action)) throw new UsageError(`deploy: unknown action "${action}"`);
    const selected = hostName ? hosts.filter((h) => h.name === hostName) : hosts;
    if (selected.length === 0) throw new UsageError(`no host "${hostName}" in ${values.hosts}`);
    let failed = 0;
    for (const h of selected) {
      try {
        const out =
          action === "status" ? await workerStatus(h, ssh)
          : action === "stop" ? await stopWorker(h, ssh)
          : await workerLogs(h, ssh, intFlag(values.lines, "lines", 100));
        process.stdout.write(action === "logs" ? out : `${h.name}: ${out}\n`);
      } catch (err) {
        failed++;
        process.stdout.write(`${h.name}: ${err instanceof Error ? err.message : err}\n`);
      }
    }
    return failed > 0 ? 1 : 0;
  }
  if (!values.coordinator) throw new UsageError("deploy needs --coordinator URL (as the workers will reach it)");
  // A compiled imgd deploys itself; from a checkout this process is bun, which would be uploaded in its place.
  if (!values.binary && !Bun.main.startsWith("/$bunfs/")) throw new UsageError("from a checkout, deploy needs --binary dist/imgd");
  const token = resolveToken(tokenFlags(values));
  // The coordinator refuses a shorter one: every worker would start, then fail to register.
  if (token.length < MIN_TOKEN_LENGTH) throw new UsageError(`the mesh token must be at least ${MIN_TOKEN_LENGTH} characters`);
  const binaryPath = resolve(values.binary ?? process.execPath);
  const opts = {
    ...ssh,
    binaryPath,
    coordinator: coordinatorUrlFlag(values.coordinator),
    token,
    threads: values.threads ? intFlag(values.threads, "threads", 1) : undefined,
  };
  const waitS = intFlag(values["wait-s"], "wait-s", 30, 0);
  const sha = fileSha256(binaryPath);
  const rows = await Promise.all(hosts.map((h) => deployHost(h, opts, sha)));
  const unchecked = waitS > 0 ? await awaitRegistration(rows, opts.coordinator, token, waitS * 1000) : null;
  process.stdout.write(`${formatDeployTable(rows)}\n${unchecked ? `${unchecked}\n` : ""}`);
  return rows.every((r) => r.ok) ? 0 : 1;
}
