// Query filters that look at what the analysis stages found (object labels, text in the photo, persons), as SQL
// predicates over `images` for IndexStore.search. A filter on a stage this index never ran says so plainly.
import type { RowReader } from "./faces/persons-table.ts";
import type { SqlClause } from "./store/catalog.ts";

export interface StageFilters {
  /** Every label must be among the image's detected objects (COCO names: "car", "person"). */
  has?: string[];
  /** Words that must appear in the image's recognised text. */
  textIn?: string;
  /** A person (name or id) who must appear in the image. */
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

/** `read` looks up the person a filter names. */
export async function stageClauses(filters: StageFilters, read: RowReader): Promise<SqlClause[]> {
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
    const { hasTable } = await import("./faces/persons-table.ts");
    const { resolvePerson } = await import("./faces/persons.ts");
    for (const table of ["faces", "persons"]) if (!(await hasTable(read, table))) throw new MissingStageError(...NEEDS[table]!);
    // By id or name, as the persons commands take it: a name nobody has is an error, as an unknown label is, not an
    // empty result that looks like "not in any photo".
    clauses.push({
      sql: "EXISTS (SELECT 1 FROM faces f WHERE f.image_id = images.id AND f.person_id = $1)",
      params: [await resolvePerson(read, filters.person)],
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
