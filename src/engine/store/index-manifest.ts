// manifest.json: what an index directory was built with, and which vectors file was last committed.
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { PreprocessSpec, TokenizerSpec } from "../types.ts";
import { commitFile } from "./atomic-file.ts";
import { storeVersions } from "./versions.ts";

export const MANIFEST_FILE = "manifest.json";
export const MANIFEST_FORMAT = 1;

export type VectorDType = "f32" | "f16" | "i8";

export interface IndexModel {
  name: string;
  dims: number;
  preprocess: PreprocessSpec;
  tokenizer?: TokenizerSpec;
}

export interface VectorOptions {
  dtype: VectorDType;
  connectivity: number;
  expansionAdd: number;
  expansionSearch: number;
}

/** Stage name -> model name by role ("detector", "embedder", "model"): what each analysis stage last ran with. */
export type StageModels = Record<string, Record<string, string>>;

export interface IndexManifest {
  format: number;
  model: IndexModel;
  /**
   * Absent in indexes from before it was recorded (their stages then take the defaults). A run without model flags
   * keeps these, as it keeps `model`: other models would analyse every image again.
   */
  stages?: StageModels;
  vectors: VectorOptions & {
    metric: "cos";
    /** Vectors in the committed vectors file. */
    count: number;
    /** sha256 and size of the committed vectors file; null before the first checkpoint. */
    sha256: string | null;
    bytes: number;
    /**
     * sha256 and size of the twins file committed with it (store/twin-ids.ts), null when it has none; absent in
     * indexes from before twins, whose graph may hold identical vectors as separate nodes.
     */
    twins?: { sha256: string; bytes: number } | null;
    /** Catalog write version the vectors file reflects; any other value means it is stale. */
    catalogVersion: number;
  };
  versions: { imgd: string; usearch: string; duckdb: string; onnxruntime?: string; sharp?: string; bun?: string };
  createdAt: string;
  updatedAt: string;
}

export function manifestPath(dir: string): string {
  return join(dir, MANIFEST_FILE);
}

export function readManifest(dir: string): IndexManifest | null {
  const path = manifestPath(dir);
  if (!existsSync(path)) return null;
  const manifest = JSON.parse(readFileSync(path, "utf8")) as IndexManifest;
  if (manifest.format !== MANIFEST_FORMAT) {
    throw new Error(`index ${dir} has manifest format ${manifest.format}; this imgd reads format ${MANIFEST_FORMAT}`);
  }
  return manifest;
}

export function writeManifest(dir: string, manifest: IndexManifest): void {
  commitFile(manifestPath(dir), `${JSON.stringify(manifest, null, 2)}\n`);
}

export function newManifest(model: IndexModel, vectors: VectorOptions): IndexManifest {
  const now = new Date().toISOString();
  return {
    format: MANIFEST_FORMAT,
    model,
    vectors: { metric: "cos", ...vectors, count: 0, sha256: null, bytes: 0, twins: null, catalogVersion: 0 },
    versions: storeVersions() as IndexManifest["versions"],
    createdAt: now,
    updatedAt: now,
  };
}

/** Refuses to mix embeddings of two models in one index. */
export function assertSameModel(dir: string, manifest: IndexManifest, wanted: { name: string; dims: number }): void {
  const have = manifest.model;
  if (have.name !== wanted.name || have.dims !== wanted.dims) {
    throw new Error(
      `index ${dir} was built with model ${have.name} (${have.dims}-d); you asked for ${wanted.name} (${wanted.dims}-d). ` +
        `Use --model ${have.name}, or a different --index directory.`,
    );
  }
}
