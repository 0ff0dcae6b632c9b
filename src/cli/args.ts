import { parseArgs, type ParseArgsConfig } from "node:util";
import { availableParallelism } from "node:os";
import { UsageError } from "./usage.ts";

export type Options = NonNullable<ParseArgsConfig["options"]>;

export function parse(argv: string[], options: Options) {
  try {
    return parseArgs({ args: argv, options, allowPositionals: true, strict: true });
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

export const INDEX_FLAG = { index: { type: "string" } } as const;
export const MODEL_FLAGS = { models: { type: "string" }, model: { type: "string" } } as const;
export const DEFAULT_INDEX = ".imgd";
export const DEFAULT_MODEL = "clip-vit-b32";
