// The objects table (one row per detected object) and the `--has LABEL` filter over it.
import type { SqlClause } from "../store/catalog.ts";
import { COCO_LABELS, LABEL_ALIASES } from "./coco-labels.ts";

export const OBJECTS_DDL = [
  `CREATE TABLE IF NOT EXISTS objects (
    image_id BIGINT NOT NULL,
    -- COCO name, e.g. 'car', 'person'
    label VARCHAR NOT NULL,
    class_id INTEGER NOT NULL,
    score FLOAT NOT NULL,
    -- box in source-image pixels (after EXIF orientation)
    x0 FLOAT NOT NULL, y0 FLOAT NOT NULL, x1 FLOAT NOT NULL, y1 FLOAT NOT NULL)`];

export class UnknownLabelError extends Error {
  constructor(label: string, close: string[]) {
    const hint = close.length > 0 ? `did you mean ${close.map((c) => `"${c}"`).join(", ")}?` : `known labels: ${[...COCO_LABELS, ...Object.keys(LABEL_ALIASES)].join(", ")}`;
    super(`unknown object label "${label}"; ${hint}`);
    this.name = "UnknownLabelError";
  }
}

const KNOWN = new Set<string>(COCO_LABELS);

/**
 * The COCO classes a query word stands for: a class name ("car", "traffic light"; case and spacing are
 * forgiven) or an alias ("vehicle", "people", "motorbike"). Anything else throws with the closest names.
 */
export function resolveLabel(word: string): string[] {
  const w = word.trim().toLowerCase().replace(/[\s_-]+/g, " ");
  if (KNOWN.has(w)) return [w];
  const alias = LABEL_ALIASES[w];
  if (alias) return [...alias];
  throw new UnknownLabelError(word, closeLabels(w));
}

/**
 * `--has` as a predicate over `images`: every word must match one of the image's objects ("car" and "person"
 * means both are in the photo). Labels travel as parameters, never as SQL text.
 */
export function objectFilterSql(labels: string[]): SqlClause {
  if (labels.length === 0) throw new Error("objectFilterSql: no labels given");
  const params: string[] = [];
  const parts = labels.map((word) => {
    const names = resolveLabel(word);
    const slots = names.map((n) => {
      params.push(n);
      return `$${params.length}`;
    });
    return `EXISTS (SELECT 1 FROM objects o WHERE o.image_id = images.id AND o.label IN (${slots.join(", ")}))`;
  });
  return { sql: parts.join(" AND "), params };
}

function closeLabels(word: string): string[] {
  const names = [...COCO_LABELS, ...Object.keys(LABEL_ALIASES)];
  const scored = names
    .map((n) => ({ n, d: editDistance(word, n), sub: word.length >= 3 && (n.includes(word) || word.includes(n)) }))
    .filter((s) => s.sub || s.d <= Math.max(1, Math.floor(word.length / 3)))
    .sort((a, b) => a.d - b.d || a.n.localeCompare(b.n));
  return scored.slice(0, 5).map((s) => s.n);
}

/** Optimal string alignment distance: a swapped pair of letters ("cra") counts as one edit. */
function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i]![j] = Math.min(d[i]![j]!, d[i - 2]![j - 2]! + 1);
    }
  }
  return d[a.length]![b.length]!;
}
