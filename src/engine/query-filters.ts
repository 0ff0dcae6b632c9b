// Query filters that look at what the analysis stages found (object labels, text in the photo, persons), as SQL
// predicates over `images` for IndexStore.search. A filter on a stage this index never ran says so plainly.
import type { RowReader } from "./faces/persons-table.ts";
import type { SqlClause } from "./store/catalog.ts";

export interface StageFilters {
  /** Every label must be among the image's detected objects (COCO names: "car", "person"). */
  has?: string[];
  /** Words that must appear in the image's recognised text. */
  textIn?: string;
  /** Persons (names or ids) who must all appear in the image: "Alice and Bob together". */
  person?: string[];
}

/** The table a filter needs: a stage's output, or persons, which come from naming clustered faces. */
export type FilterSource = "objects" | "ocr" | "faces" | "persons";

const MISSING: Record<FilterSource, { what: string; advice: string }> = {
  objects: { what: "object labels", advice: "run imgd index with --objects first" },
  ocr: { what: "recognised text", advice: "run imgd index with --ocr first" },
  faces: { what: "faces", advice: "run imgd index with --faces first" },
  persons: { what: "persons", advice: "run imgd index with --faces, then imgd faces cluster / imgd persons name first" },
};

/** A filter on what this index never produced; `what` names it for any caller, the message adds the CLI's advice. */
export class MissingStageError extends Error {
  readonly what: string;
  constructor(readonly source: FilterSource) {
    super(`this index has no ${MISSING[source].what} yet: ${MISSING[source].advice}`);
    this.what = MISSING[source].what;
    this.name = "MissingStageError";
  }
}

/** Which source each table belongs to, to turn DuckDB's "table does not exist" into advice. */
const SOURCE_OF_TABLE: Record<string, FilterSource> = { objects: "objects", ocr_lines: "ocr", ocr_terms: "ocr", faces: "faces", persons: "persons" };

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
  const persons = (filters.person ?? []).map((p) => p.trim()).filter(Boolean);
  if (persons.length > 0) {
    const { hasTable } = await import("./faces/persons-table.ts");
    const { resolvePerson } = await import("./faces/persons.ts");
    for (const table of ["faces", "persons"] as const) if (!(await hasTable(read, table))) throw new MissingStageError(table);
    // By id or name, as the persons commands take it: a name nobody has is an error, as an unknown label is, not an
    // empty result that looks like "not in any photo".
    for (const person of persons) {
      clauses.push({
        sql: "EXISTS (SELECT 1 FROM faces f WHERE f.image_id = images.id AND f.person_id = $1)",
        params: [await resolvePerson(read, person)],
      });
    }
  }
  return clauses;
}

/** Rewrites DuckDB's missing-table error for a stage filter into what to do about it. */
export function explainMissingStage(error: unknown): unknown {
  const table = /Table with name (\w+) does not exist/.exec(error instanceof Error ? error.message : "")?.[1];
  const source = table ? SOURCE_OF_TABLE[table] : undefined;
  return source ? new MissingStageError(source) : error;
}
