// The engine's refusals end in the CLI command that settles them ("merge them with imgd persons merge 3 7", "run
// imgd index with --ocr first"). An HTTP client cannot run those: from the facts the errors carry, it is told the
// route to call instead, or what the index lacks and how images get it.
import { PersonsError } from "../engine/faces/persons-table.ts";
import { MissingStageError, type FilterSource } from "../engine/query-filters.ts";

const STAGE: Record<Exclude<FilterSource, "persons">, string> = { faces: "face detection", objects: "object detection", ocr: "text recognition" };

function missing(source: FilterSource, what: string): string {
  if (source === "persons") {
    return "this index has no persons yet: create one with POST /api/persons, or name a face cluster with POST /api/persons/{id}/name";
  }
  return `this index has no ${what} yet: ${STAGE[source]} finds them when images are indexed, or ingested (POST /api/ingest) on a server that runs it`;
}

/** An error's message as an API client should read it. */
export function inApiTerms(error: unknown): string {
  if (error instanceof MissingStageError) return missing(error.source, error.what);
  if (error instanceof PersonsError) return personsRefusal(error);
  return error instanceof Error ? error.message : String(error);
}

function personsRefusal(error: PersonsError): string {
  const refusal = error.refusal;
  if (refusal?.what === "no-faces") return missing("faces", "faces");
  if (refusal?.what === "name-taken") {
    const { name, holder, self } = refusal;
    return self === null
      ? `"${name}" is already person ${holder}; give them the faces with POST /api/persons/${holder}/assign {"face_ids": [...]}`
      : `"${name}" is already person ${holder}; merge them with POST /api/persons/${holder}/merge {"sources": [${self}]}`;
  }
  return error.message;
}
