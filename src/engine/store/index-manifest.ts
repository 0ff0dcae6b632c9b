// manifest.json: what an index was built with, and which vectors file matches the catalog.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PreprocessSpec, TokenizerSpec } from "../types.ts";
import { commitBytes } from "./atomic-file.ts";

export type VectorDType = "f32" | "f16" | "i8";

export interface VectorSettings {
  metric: "cos";
  dtype: VectorDType;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
}

export interface IndexManifest {
  format: 1;
  model: { name: string; dims: number; preprocess: PreprocessSpec; tokenizer?: TokenizerSpec };
  vectors: VectorSettings & {
    /** State of vectors.usearch at the last checkpoint. */
    count: number;
    maxId: number;
    bytes: number;
    sha256: string | null;
  };
  versions: Record<string, string>;
  createdAt: string;
  updatedAt: string;
}

export const MANIFEST = "manifest.json";

export function readManifest(dir: string): IndexManifest | null {
  const path = join(dir, MANIFEST);
  if (!existsSync(path)) return null;
  const parsed = JSON.parse(readFileSync(path, "utf8")) as IndexManifest;
  if (parsed.format !== 1) throw new Error(`${path}: unsupported index format ${parsed.format}`);
  return parsed;
}

export function writeManifest(dir: string, manifest: IndexManifest): Promise<void> {
  return commitBytes(join(dir, MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`);
}
