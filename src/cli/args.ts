import { parseArgs, type ParseArgsConfig } from "node:util";
import { availableParallelism } from "node:os";
import { UsageError } from "./usage.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse<const O extends Options>(argv: string[], options: O) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true as const, strict: true as const });
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
}

/**
 * A command that takes no arguments refuses a stray one rather than ignoring it: `imgd info ~/idx` would show (or
 * miss) ./.imgd instead. `flag` names the flag such a word was most likely meant for.
 */
export function noArguments(positionals: string[], command: string, flag?: string): void {
  if (positionals.length === 0) return;
  const meant = flag && positionals.length === 1 ? ` (did you mean ${flag} ${positionals[0]}?)` : "";
  throw new UsageError(`${command} takes no arguments, got "${positionals.join(" ")}"${meant}`);
}

/** `name` is a flag's long name ("batch"), its one letter ("k"), or what a positional argument is ("face id"). */
export function intFlag(value: unknown, name: string, fallback: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  if (value === undefined) return fallback;
  // Decimal digits only: Number() also reads "0x10" as 16, "1e3" as 1000 and "" as 0.
  const n = typeof value === "string" && !/^\d+$/.test(value) ? NaN : Number(value);
  if (!Number.isInteger(n) || n < min || n > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`${asWritten(name)} takes a whole number ${range}, got "${value}"`);
  }
  return n;
}

/** How the user wrote it: --batch, -k, or a positional argument's description as it is. */
function asWritten(name: string): string {
  if (name.includes(" ")) return name;
  return name.length === 1 ? `-${name}` : `--${name}`;
}

/** `--exclude-dir NAME`: a folder's name, matched at any depth (a path would never match one). */
export function excludeDirNames(names: string[] | undefined): string[] | undefined {
  for (const name of names ?? []) {
    if (name === "" || name.includes("/")) throw new UsageError(`--exclude-dir takes a folder name, not a path: ${JSON.stringify(name)}`);
  }
  return names;
}

/** The coordinator's address as workers reach it. */
export function coordinatorUrlFlag(value: string): string {
  if (!URL.canParse(value) || !/^https?:$/.test(new URL(value).protocol)) {
    throw new UsageError(`--coordinator must be an http:// or https:// URL, not ${JSON.stringify(value)}`);
  }
  return value;
}

/** A TCP port to listen on; 0 picks a free one. */
export function portFlag(value: unknown, fallback: number): number {
  return intFlag(value, "port", fallback, 0, 65535);
}

export function defaultThreads(): number {
  return availableParallelism();
}

export const DEFAULT_INDEX = ".imgd";
export { DEFAULT_MODEL } from "../engine/models.ts";

/** `--token` and `--token-file` as the token lookup takes them; both at once is a mistake, not a silent choice. */
export function tokenFlags(values: { token?: string; "token-file"?: string }): { token?: string; tokenFile?: string } {
  if (values.token !== undefined && values["token-file"] !== undefined) throw new UsageError("--token and --token-file exclude each other: give one");
  return { token: values.token, tokenFile: values["token-file"] };
}
