// The persons tables beside `faces` (faces-table.ts): who a face belongs to, each person's centroid and prototypes
// (what new faces are matched against) and the suggestions of the batched suggestion pass.
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";

export const PERSONS_DDL = [
  "CREATE SEQUENCE IF NOT EXISTS person_ids START 1",
  `CREATE TABLE IF NOT EXISTS persons (
    id BIGINT PRIMARY KEY DEFAULT nextval('person_ids'),
    -- NULL for a cluster nobody has named yet; unique ignoring case (checked on write: DuckDB has no unique index on lower(name))
    name VARCHAR UNIQUE,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    -- L2-normalised mean of the person's faces, raw little-endian float32
    centroid BLOB)`,
  `CREATE TABLE IF NOT EXISTS person_prototypes (
    person_id BIGINT NOT NULL,
    -- L2-normalised spherical k-means centre of some of the person's faces
    embedding BLOB NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS face_suggestions (
    face_id BIGINT NOT NULL,
    -- so deleting an image drops its suggestions with its faces
    image_id BIGINT NOT NULL,
    -- NULL with status 'no-match': checked against every prototype of that generation, nobody close enough
    person_id BIGINT,
    score FLOAT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT current_timestamp,
    status VARCHAR NOT NULL CHECK (status IN ('pending', 'accepted', 'rejected', 'no-match')),
    -- persons_settings.generation when the row was written: a newer generation re-checks 'no-match' faces
    generation BIGINT NOT NULL)`,
  // generation: bumped by every change to persons or prototypes; assign_threshold / suggest_threshold: cosine.
  "CREATE TABLE IF NOT EXISTS persons_settings (key VARCHAR PRIMARY KEY, value DOUBLE NOT NULL)",
];

/** Rows as DuckDB values: IndexStore.read in the server, a connection in the CLI and inside transactions. */
export type RowReader = (sql: string, params?: DuckDBValue[]) => Promise<DuckDBValue[][]>;

export function readerOf(conn: DuckDBConnection): RowReader {
  return async (sql, params) => (await conn.runAndReadAll(sql, params)).getRows();
}

/**
 * Creates the persons tables on an index with faces. Without a faces table they would be half a schema every
 * persons query then fails on, so writing is refused before anything is created.
 */
export async function ensurePersonsTables(conn: DuckDBConnection): Promise<void> {
  if (!(await hasTable(readerOf(conn), "faces"))) throw noFacesError("conflict");
  for (const statement of PERSONS_DDL) await conn.run(statement);
}

/** Persons can be read: both tables are there (an older build could create persons on an index without faces). */
export async function hasPersons(read: RowReader): Promise<boolean> {
  return (await hasTable(read, "persons")) && (await hasTable(read, "faces"));
}

export async function hasTable(read: RowReader, name: string): Promise<boolean> {
  const rows = await read(
    "SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' AND table_name = $1",
    [name],
  );
  return rows.length > 0;
}

/** Typical for ArcFace-style 512-d embedders: same person mostly above 0.5, different people mostly below 0.3. */
export const DEFAULT_THRESHOLDS = { assign_threshold: 0.5, suggest_threshold: 0.38 } as const;
export type ThresholdKey = keyof typeof DEFAULT_THRESHOLDS;

export interface PersonsSettings {
  generation: number;
  assignThreshold: number;
  suggestThreshold: number;
}

export async function readSettings(read: RowReader): Promise<PersonsSettings> {
  const values = new Map<string, number>();
  if (await hasTable(read, "persons_settings")) {
    for (const [k, v] of await read("SELECT key, value FROM persons_settings")) values.set(k as string, Number(v));
  }
  return {
    generation: values.get("generation") ?? 0,
    assignThreshold: values.get("assign_threshold") ?? DEFAULT_THRESHOLDS.assign_threshold,
    suggestThreshold: values.get("suggest_threshold") ?? DEFAULT_THRESHOLDS.suggest_threshold,
  };
}

export async function writeThreshold(conn: DuckDBConnection, key: ThresholdKey, value: number): Promise<void> {
  if (!(value > -1 && value <= 1)) throw new PersonsError("invalid", `${key} is a cosine similarity in (-1, 1], got ${value}`);
  await conn.run("INSERT OR REPLACE INTO persons_settings VALUES ($1, $2)", [key, value]);
}

/** Marks persons or prototypes as changed, so cached prototype sets reload and 'no-match' faces are checked again. */
export async function bumpGeneration(conn: DuckDBConnection): Promise<void> {
  await conn.run(`INSERT OR REPLACE INTO persons_settings
    SELECT 'generation', coalesce((SELECT value FROM persons_settings WHERE key = 'generation'), 0) + 1`);
}

/**
 * What a refusal is about, for callers that word it themselves: the message names the CLI command that settles it,
 * which an HTTP client cannot run.
 */
export type PersonsRefusal = { what: "no-faces" } | { what: "name-taken"; name: string; holder: number; self: number | null };

/** A request the persons data cannot satisfy; `kind` maps to 404 / 409 / 400 in the API and exit 1 in the CLI. */
export class PersonsError extends Error {
  constructor(
    readonly kind: "not-found" | "conflict" | "invalid",
    message: string,
    readonly refusal?: PersonsRefusal,
  ) {
    super(message);
    this.name = "PersonsError";
  }
}

export function noFacesError(kind: PersonsError["kind"]): PersonsError {
  return new PersonsError(kind, "this index has no faces yet: run imgd index with --faces first", { what: "no-faces" });
}

export function blobToFloats(value: DuckDBValue): Float32Array {
  const bytes = (value as { bytes: Uint8Array }).bytes;
  // Copy so the floats are 4-byte aligned and outlive DuckDB's result buffer.
  return new Float32Array(bytes.slice().buffer);
}

export function floatsAsBytes(v: Float32Array): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/** Ids checked to be safe integers, for IN (...) and VALUES lists built as SQL text. */
export function idList(ids: Iterable<number>): string {
  const out: string[] = [];
  for (const id of ids) {
    if (!Number.isSafeInteger(id)) throw new PersonsError("invalid", `not an id: ${id}`);
    out.push(String(id));
  }
  return out.join(",");
}
