// Query filters that look at what the analysis stages found (object labels, text in the photo, persons), as SQL
// predicates over `images` for IndexStore.search. A filter on a stage this index never ran says so plainly.
import type { SqlClause } from "./store/catalog.ts";

export interface StageFilters {
  /** Every label must be among the image's detected objects (COCO names: "car", "person"). */
  has?: string[];
  /** Words that must appear in the image's recognised text. */
  textIn?: string;
  /** A named person who must appear in the image. */
  person?: string;
}

export class MissingStageError extends Error {
  constructor(filter: string, flag: string) {
    super(`this index has no ${filter} yet: run imgd index with ${flag} first`);
    this.name = "MissingStageError";
  }
}

/** Which stage table each filter needs, to turn DuckDB's "table does not exist" into advice. */
const NEEDS: Record<string, [string, string]> = {
  objects: ["object labels", "--objects"],
  ocr_lines: ["recognised text", "--ocr"],
  ocr_terms: ["recognised text", "--ocr"],
  faces: ["faces", "--faces"],
  persons: ["persons", "--faces, then imgd faces cluster / imgd persons name"],
};

export async function stageClauses(filters: StageFilters): Promise<SqlClause[]> {
  const clauses: SqlClause[] = [];
  if (filters.has?.length) {
    const { objectFilterSql } = await import("./objects/objects-table.ts");
    clauses.push(objectFilterSql(filters.has));
  }
  if (filters.textIn?.trim()) {
    const { textInFilterSql } = await import("./ocr/ocr-table.ts");
    clauses.push(textInFilterSql(filters.textIn));
  }
  if (filters.person?.trim()) {
    clauses.push({
      sql: `EXISTS (SELECT 1 FROM faces f JOIN persons p ON p.id = f.person_id
        WHERE f.image_id = images.id AND lower(p.name) = lower($1))`,
      params: [filters.person.trim()],
    });
  }
  return clauses;
}

/** Rewrites DuckDB's missing-table error for a stage filter into what to do about it. */
export function explainMissingStage(error: unknown): unknown {
  const table = /Table with name (\w+) does not exist/.exec(error instanceof Error ? error.message : "")?.[1];
  const need = table ? NEEDS[table] : undefined;
  return need ? new MissingStageError(need[0], need[1]) : error;
}
