// What the analysis stages found in one image, for the detail view and GET /api/images/:id: object boxes, faces
// (with the person each belongs to) and recognised text lines, all in source-image pixels.
import type { DuckDBValue } from "@duckdb/node-api";
import type { IndexStore } from "./index-store.ts";

export interface ImageAnalyses {
  objects: { label: string; score: number; box: [number, number, number, number] }[];
  faces: { id: number; score: number; box: [number, number, number, number]; person: string | null; personId: number | null }[];
  /** `box` is the line's quadrilateral: x0,y0, x1,y1, x2,y2, x3,y3. */
  text: { text: string; score: number; box: number[] }[];
}

export async function imageAnalyses(store: IndexStore, imageId: number): Promise<ImageAnalyses> {
  const tables = await store.tables();
  const id = Math.trunc(imageId);
  const out: ImageAnalyses = { objects: [], faces: [], text: [] };
  if (tables.has("objects")) {
    const rows = await store.read(
      `SELECT label, score, x0, y0, x1, y1 FROM objects WHERE image_id = ${id} ORDER BY score DESC`,
    );
    out.objects = rows.map((r) => ({ label: r[0] as string, score: num(r[1]), box: box4(r, 2) }));
  }
  if (tables.has("faces")) {
    const named = tables.has("persons");
    const rows = await store.read(
      `SELECT f.id, f.score, f.x0, f.y0, f.x1, f.y1, ${named ? "p.name, f.person_id" : "NULL, NULL"} FROM faces f
       ${named ? "LEFT JOIN persons p ON p.id = f.person_id" : ""} WHERE f.image_id = ${id} ORDER BY f.x0`,
    );
    out.faces = rows.map((r) => ({
      id: Number(r[0]),
      score: num(r[1]),
      box: box4(r, 2),
      person: (r[6] as string | null) ?? null,
      personId: r[7] === null ? null : Number(r[7]),
    }));
  }
  if (tables.has("ocr_lines")) {
    const rows = await store.read(`SELECT text, score, box FROM ocr_lines WHERE image_id = ${id} ORDER BY line`);
    out.text = rows.map((r) => ({ text: r[0] as string, score: num(r[1]), box: list(r[2]) }));
  }
  return out;
}

function num(v: DuckDBValue): number {
  return Number(v);
}

function box4(r: DuckDBValue[], from: number): [number, number, number, number] {
  return [num(r[from]!), num(r[from + 1]!), num(r[from + 2]!), num(r[from + 3]!)];
}

/** A DuckDB LIST/ARRAY value as plain numbers. */
function list(v: DuckDBValue): number[] {
  const items = (v as { items?: DuckDBValue[] } | null)?.items ?? [];
  return items.map(num);
}
