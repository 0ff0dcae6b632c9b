// `imgd index --objects`: COCO object labels and boxes per image from a YOLO-family detector, as an analysis stage.
import type { DuckDBConnection, DuckDBValue } from "@duckdb/node-api";
import type { AnalysisStage, StageCounts } from "../analysis/stage.ts";
import { sha256File } from "../identity.ts";
import { isVehicle, PERSON } from "./coco-labels.ts";
import { OBJECTS_DDL } from "./objects-table.ts";
import { YoloDetector, type Detection } from "./yolo-detector.ts";
import { DEFAULT_OBJECT_MODEL, resolveObjectModel } from "./yolo-model.ts";

export type { Detection } from "./yolo-detector.ts";

export interface ObjectsStageOptions {
  modelDirs: string[];
  /** A stage model with task "object-detect"; default yolov8n. */
  model?: string;
  threads?: number;
  conf?: number;
  iou?: number;
}

/** Bump when letterboxing or decoding changes what the same model finds, so indexed images are analysed again. */
const PIPELINE_VERSION = 1;

/** Rows per INSERT statement: 8 parameters each keeps a statement well under DuckDB's limits. */
const INSERT_CHUNK = 500;

export async function createObjectsStage(opts: ObjectsStageOptions): Promise<AnalysisStage<Detection[]>> {
  const model = resolveObjectModel(opts.model ?? DEFAULT_OBJECT_MODEL, opts.modelDirs);
  // The model's bytes and the thresholds shape the rows; change any of them and images are analysed again.
  const digest = (await sha256File(model.path)).slice(0, 16);
  const detector = await YoloDetector.open(model, opts);
  return {
    name: "objects",
    version: `${PIPELINE_VERSION} ${model.manifest.name}@${digest} conf=${detector.conf} iou=${detector.iou}`,
    // Letterboxing scales the long side to the input size; a square photo's long side is its short side.
    models: { model: model.manifest.name },
    minShortSide: detector.size,
    ddl: OBJECTS_DDL,
    analyze: (image) => detector.detect(image),
    write: writeObjects,
    counts: objectCounts,
    close: () => detector.close(),
  };
}

export function objectCounts(found: Detection[]): StageCounts {
  let vehicles = 0;
  let people = 0;
  for (const d of found) {
    if (d.label === PERSON) people++;
    else if (isVehicle(d.label)) vehicles++;
  }
  return { objects: found.length, vehicles, people };
}

export async function writeObjects(conn: DuckDBConnection, results: { imageId: number; result: Detection[] }[]): Promise<void> {
  const rows = results.flatMap(({ imageId, result }) => result.map((d) => ({ imageId, d })));
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    const params: DuckDBValue[] = [];
    const tuples = chunk.map(({ imageId, d }) => {
      const base = params.length;
      params.push(imageId, d.label, d.classId, d.score, ...d.box);
      return `(${Array.from({ length: 8 }, (_, k) => `$${base + k + 1}`).join(", ")})`;
    });
    await conn.run(`INSERT INTO objects (image_id, label, class_id, score, x0, y0, x1, y1) VALUES ${tuples.join(", ")}`, params);
  }
}
