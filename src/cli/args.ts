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

export function intFlag(value: unknown, name: string, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} takes a whole number >= ${min}, got "${value}"`);
  return n;
}

export function defaultThreads(): number {
  return availableParallelism();
}

export const DEFAULT_INDEX = ".imgd";
export const DEFAULT_MODEL = "clip-vit-b32";
