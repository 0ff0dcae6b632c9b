// Where recognised text lives in the catalog: one ocr_lines row per line, and ocr_terms, our own inverted index
// (term -> image) behind `--text-in`. DuckDB's fts extension is not compiled into @duckdb/node-api's binary and
// `INSTALL fts` downloads it from extensions.duckdb.org, which an offline machine (or a compiled imgd on one) cannot
// reach; its index is also rebuilt whole by PRAGMA create_fts_index rather than kept up to date by inserts.
// ocr_terms is maintained row by row in the same transaction as the lines, and the pipeline's per-image delete
// (every table with an image_id column) keeps it exact.
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import type { Quad } from "./ocr-geometry.ts";
import { distinctTerms, textTerms } from "./ocr-terms.ts";

export interface OcrLine {
  text: string;
  /** Recogniser confidence, 0..1. */
  score: number;
  /** Corners x0,y0 .. x3,y3 (top-left, top-right, bottom-right, bottom-left of the upright text) in source pixels. */
  box: [number, number, number, number, number, number, number, number];
}

export const OCR_DDL = [
  `CREATE TABLE IF NOT EXISTS ocr_lines (
    image_id BIGINT NOT NULL,
    -- reading order within the image, from 0
    line INTEGER NOT NULL,
    text VARCHAR NOT NULL,
    score FLOAT NOT NULL,
    box FLOAT[8] NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS ocr_terms (
    term VARCHAR NOT NULL,
    image_id BIGINT NOT NULL)`,
  "CREATE INDEX IF NOT EXISTS ocr_terms_term ON ocr_terms (term)",
];

export function quadToBox(quad: Quad, scaleX = 1, scaleY = 1): OcrLine["box"] {
  return quad.flatMap(([x, y]) => [round2(x * scaleX), round2(y * scaleY)]) as OcrLine["box"];
}

function round2(v: number): number {
  return Math.round(v * 100) / 100;
}

/** Appends the lines and their distinct terms of each image; runs inside the caller's transaction. */
export async function writeOcrLines(conn: DuckDBConnection, results: { imageId: number; result: OcrLine[] }[]): Promise<void> {
  const lines = await conn.createAppender("ocr_lines");
  const terms = await conn.createAppender("ocr_terms");
  try {
    for (const { imageId, result } of results) {
      const id = BigInt(imageId);
      result.forEach((l, i) => {
        lines.appendBigInt(id);
        lines.appendInteger(i);
        lines.appendVarchar(l.text);
        lines.appendFloat(l.score);
        lines.appendArray(l.box);
        lines.endRow();
      });
      for (const term of distinctTerms(result.map((l) => l.text))) {
        terms.appendVarchar(term);
        terms.appendBigInt(id);
        terms.endRow();
      }
    }
  } finally {
    lines.closeSync();
    terms.closeSync();
  }
}

/**
 * A predicate over `images` (parameters $1..) that holds for images whose recognised text contains every word of
 * `words` (as whole words, case and accents ignored, in any order). Throws when `words` has no letter or digit.
 */
export function textInFilterSql(words: string): { sql: string; params: DuckDBValue[] } {
  const terms = [...new Set(textTerms(words))];
  if (terms.length === 0) throw new Error(`text filter "${words}" has no word to look for (letters or digits)`);
  return {
    sql: terms.map((_, i) => `images.id IN (SELECT image_id FROM ocr_terms WHERE term = $${i + 1})`).join(" AND "),
    params: terms,
  };
}

/** The recognised lines of one image in reading order (for the API's detail view); none if OCR never ran. */
export async function readOcrLines(conn: DuckDBConnection, imageId: number): Promise<OcrLine[]> {
  const exists = await conn.runAndReadAll("SELECT 1 FROM duckdb_tables() WHERE database_name = current_database() AND table_name = 'ocr_lines'");
  if (exists.getRows().length === 0) return [];
  const reader = await conn.runAndReadAll(
    "SELECT text, score, box FROM ocr_lines WHERE image_id = $1 ORDER BY line",
    [BigInt(imageId)],
  );
  return reader.getRowsJS().map(([text, score, box]) => ({
    text: text as string,
    score: Number(score),
    box: [...(box as number[])].map(Number) as OcrLine["box"],
  }));
}
