// OpenSSH known_hosts, the part deploy needs: is this key the one on record for host:port? Plain and hashed
// (`|1|salt|hmac`) host patterns are read; new entries are written plain. A changed key is never accepted here.
import { createHmac } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname } from "node:path";

export type HostKeyCheck = "match" | "changed" | "unknown";

/** `host` on port 22, `[host]:port` otherwise, as OpenSSH writes it. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function patternMatches(pattern: string, name: string): boolean {
  if (pattern.startsWith("|1|")) {
    const [, , salt, hash] = pattern.split("|");
    if (!salt || !hash) return false;
    return createHmac("sha1", Buffer.from(salt, "base64")).update(name).digest("base64") === hash;
  }
  return pattern.split(",").includes(name);
}

export function checkHostKey(file: string, host: string, port: number, keyType: string, keyBlob: Buffer): HostKeyCheck {
  if (!existsSync(file)) return "unknown";
  const name = hostPattern(host, port);
  let sawHost = false;
  for (const raw of readFileSync(file, "utf8").split("\n")) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    const fields = line.split(/\s+/);
    // A leading @revoked / @cert-authority marker: revoked keys never match; CA lines are not used here.
    const marker = fields[0]!.startsWith("@") ? fields.shift() : undefined;
    const [pattern, type, key] = fields;
    if (!pattern || !type || !key || !patternMatches(pattern, name)) continue;
    if (marker === "@cert-authority") continue;
    const same = type === keyType && Buffer.from(key, "base64").equals(keyBlob);
    if (marker === "@revoked") {
      if (same) return "changed";
      continue;
    }
    if (same) return "match";
    sawHost = true;
  }
  return sawHost ? "changed" : "unknown";
}

export function addHostKey(file: string, host: string, port: number, keyType: string, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true });
  appendFileSync(file, `${hostPattern(host, port)} ${keyType} ${keyBlob.toString("base64")}\n`, { mode: 0o600 });
}
