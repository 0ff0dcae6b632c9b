// Where a running `imgd serve` answers for its index, written beside the catalog. DuckDB lets no other process open
// a catalog that a server holds open for writing, so `imgd query` on that index asks the server instead.
import { readFileSync, unlinkSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { commitFile } from "../engine/store/atomic-file.ts";
import { processAlive } from "../engine/store/holder-file.ts";

export interface ServerAddress {
  url: string;
  pid: number;
  /** The machine it runs on: an index on shared storage can be served from another host, whose loopback is not ours. */
  host: string;
}

const FILE = "server.json";

/** Publishes `url` for the index; the returned function withdraws it (if it is still this process's). */
export function publishServerAddress(indexDir: string, url: URL): () => void {
  const path = join(indexDir, FILE);
  const local = new URL(url);
  // Bound to every interface: a client on this machine reaches it on loopback.
  if (local.hostname === "0.0.0.0") local.hostname = "127.0.0.1";
  if (local.hostname === "[::]") local.hostname = "[::1]";
  const address: ServerAddress = { url: local.href.replace(/\/$/, ""), pid: process.pid, host: hostname() };
  try {
    commitFile(path, `${JSON.stringify(address)}\n`);
  } catch {
    // A read-only index directory: queries then cannot find the server, which serves all the same.
    return () => {};
  }
  return () => {
    if (readServerAddress(indexDir)?.pid === process.pid) unlinkSync(path);
  };
}

/** The server answering for `indexDir` on this machine, if one is running. */
export function runningServerFor(indexDir: string): ServerAddress | undefined {
  const address = readServerAddress(indexDir);
  if (!address || address.host !== hostname() || !processAlive(address.pid)) return undefined;
  return address;
}

function readServerAddress(indexDir: string): ServerAddress | undefined {
  try {
    const value = JSON.parse(readFileSync(join(indexDir, FILE), "utf8"));
    return typeof value?.url === "string" && Number.isInteger(value?.pid) && typeof value?.host === "string" ? value : undefined;
  } catch {
    return undefined;
  }
}
