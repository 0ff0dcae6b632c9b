// The contract between `imgd index` and its optional per-image analyses (faces, objects, text). The pipeline
// decodes each image once, large enough for every enabled stage, and hands the same pixels to each of them.
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import type { DecodedImage } from "../types.ts";

/** Reads the catalog (IndexStore.read). */
export type IndexReader = (sql: string, params?: DuckDBValue[]) => Promise<DuckDBValue[][]>;

/** What a stage found in one image, as counted in the ingest response and run reports. */
export type StageCounts = Partial<Record<"vehicles" | "people" | "faces" | "ocr" | "objects", number>>;

export interface AnalysisStage<R = unknown> {
  /** Stable key stored with every analysed image: "faces", "objects", "ocr". */
  readonly name: string;
  /** Models and settings that shape the results; an image analysed under another version is analysed again. */
  readonly version: string;
  /** Model names by role, defaults filled in; recorded in the index so a run without model flags keeps them. */
  readonly models: Readonly<Record<string, string>>;
  /**
   * The decoded image's short side must be at least this many pixels (shrink-on-load stops there).
   * Results are in source pixels: scale by image.sourceWidth / image.width when mapping boxes back.
   */
  readonly minShortSide: number;
  /** CREATE TABLE/SEQUENCE IF NOT EXISTS statements, run on every writable open. Rows keyed by `image_id BIGINT`. */
  readonly ddl: readonly string[];
  /**
   * Before a run creates or writes anything: throws, saying what to do, if the index's rows cannot take this stage's
   * results (faces: named persons made from another embedding size). `recorded`: the models the index last ran it with.
   */
  assertFitsIndex?(read: IndexReader, recorded: Readonly<Record<string, string>> | undefined): Promise<void>;
  analyze(image: DecodedImage): Promise<R>;
  /**
   * Runs inside the catalog's write transaction. The pipeline has already deleted this stage's earlier rows for
   * these images (every table with an image_id column), so write only the new ones.
   */
  write(conn: DuckDBConnection, results: { imageId: number; result: R }[]): Promise<void>;
  counts(result: R): StageCounts;
  close(): Promise<void>;
}
