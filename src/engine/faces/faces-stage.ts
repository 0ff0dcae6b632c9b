// `imgd index --faces`: detect faces (SCRFD), align each to ArcFace's 112x112 template from its 5 landmarks, embed
// the crops (ArcFace), and store one faces row per face, as an analysis stage.
import type { DuckDBConnection, DuckDBType, DuckDBValue } from "@duckdb/node-api";
import type { AnalysisStage, StageCounts } from "../analysis/stage.ts";
import { sha256File } from "../identity.ts";
import { loadDuckDB } from "../native.ts";
import type { DecodedImage } from "../types.ts";
import { ALIGNED_SIZE, alignFace, laplacianVariance } from "./face-align.ts";
import type { Landmarks } from "./face-detect.ts";
import { FaceDetector } from "./face-detector.ts";
import { FaceEmbedder } from "./face-embed.ts";
import { DEFAULT_FACE_DETECTOR, DEFAULT_FACE_EMBEDDER, resolveFaceDetector, resolveFaceEmbedder } from "./face-models.ts";
import { FACES_DDL } from "./faces-table.ts";
import { assertEmbedderFitsPersons } from "./persons-match.ts";

export interface FaceResult {
  /** x0 y0 x1 y1 in source-image pixels (after EXIF orientation, before any shrink-on-load), clipped to the image. */
  box: [number, number, number, number];
  /** The 5 landmarks in source-image pixels; not clipped (a face at the edge may have an eye outside). */
  landmarks: Landmarks;
  score: number;
  /** Variance of the Laplacian of the aligned 112x112 crop: low means blurred. */
  blur: number;
  /** Unit length. */
  embedding: Float32Array;
}

export interface WrittenFace {
  id: number;
  imageId: number;
  embedding: Float32Array;
}

export interface FacesStageOptions {
  modelDirs: string[];
  /** A stage model with task "face-detect"; default scrfd-10g. */
  detector?: string;
  /** A stage model with task "face-embed"; default arcface-r50. */
  embedder?: string;
  threads?: number;
  /** Detection score threshold; default the detector manifest's (0.5, insightface's det_thresh). */
  minScore?: number;
  /** Faces whose box is narrower or shorter than this many source pixels are skipped; default 20. */
  minFaceSize?: number;
  /** Runs inside the same write transaction after the rows are in (persons auto-assignment hooks in here). */
  onFacesWritten?: (conn: DuckDBConnection, faces: WrittenFace[]) => Promise<void>;
}

/** Below this a 112x112 crop is mostly upsampling; ArcFace's embeddings of such faces are unreliable. */
export const DEFAULT_MIN_FACE_SIZE = 20;
/** Rows per INSERT statement (9 parameters each). */
const INSERT_CHUNK = 400;

export async function createFacesStage(opts: FacesStageOptions): Promise<AnalysisStage<FaceResult[]>> {
  const minFaceSize = opts.minFaceSize ?? DEFAULT_MIN_FACE_SIZE;
  if (!(minFaceSize >= 0)) throw new Error(`minimum face size must be 0 or more pixels, got ${opts.minFaceSize}`);
  const detectorModel = resolveFaceDetector(opts.detector ?? DEFAULT_FACE_DETECTOR, opts.modelDirs);
  const embedderModel = resolveFaceEmbedder(opts.embedder ?? DEFAULT_FACE_EMBEDDER, opts.modelDirs);
  const detector = await FaceDetector.open(detectorModel, { threads: opts.threads, threshold: opts.minScore });
  let embedder: FaceEmbedder;
  try {
    embedder = await FaceEmbedder.open(embedderModel, { threads: opts.threads });
    if (embedder.size !== ALIGNED_SIZE) throw new Error(`face embedder ${embedderModel.manifest.name} takes ${embedder.size}px crops; alignment makes ${ALIGNED_SIZE}px`);
  } catch (error) {
    await detector.close();
    throw error;
  }
  // The models' bytes and the thresholds shape the rows; change any of them and images are analysed again.
  const [detDigest, embDigest] = await Promise.all([sha256File(detectorModel.path), sha256File(embedderModel.path)]);
  const version =
    `${detectorModel.manifest.name}@${detDigest.slice(0, 16)}+${embedderModel.manifest.name}@${embDigest.slice(0, 16)}` +
    ` score=${detector.threshold} nms=${detector.nmsThreshold} min=${minFaceSize}`;

  return {
    name: "faces",
    version,
    models: { detector: detectorModel.manifest.name, embedder: embedderModel.manifest.name },
    // The detector fits the long side to its input; a square photo's long side is its short side.
    minShortSide: Math.max(detector.inputWidth, detector.inputHeight),
    ddl: FACES_DDL,
    assertFitsIndex: (read, recorded) =>
      assertEmbedderFitsPersons(read, { name: embedderModel.manifest.name, dims: embedder.dims }, recorded?.embedder),
    analyze: (image) => analyzeFaces(image, detector, embedder, minFaceSize),
    write: async (conn, results) => void (await writeFaces(conn, results, opts.onFacesWritten)),
    counts: (faces): StageCounts => ({ faces: faces.length }),
    close: async () => {
      await Promise.all([detector.close(), embedder.close()]);
    },
  };
}

export async function analyzeFaces(
  image: DecodedImage,
  detector: FaceDetector,
  embedder: FaceEmbedder,
  minFaceSize: number,
): Promise<FaceResult[]> {
  if (image.width < 1 || image.height < 1) return [];
  const sx = image.sourceWidth / image.width;
  const sy = image.sourceHeight / image.height;
  const found: Omit<FaceResult, "embedding">[] = [];
  const crops: Uint8Array[] = [];
  for (const face of await detector.detect(image)) {
    const box: FaceResult["box"] = [
      clamp(face.box[0] * sx, image.sourceWidth),
      clamp(face.box[1] * sy, image.sourceHeight),
      clamp(face.box[2] * sx, image.sourceWidth),
      clamp(face.box[3] * sy, image.sourceHeight),
    ];
    if (!(Math.min(box[2] - box[0], box[3] - box[1]) >= Math.max(minFaceSize, Number.MIN_VALUE))) continue;
    // Aligned from the decoded pixels: a shrunk decode still has at least the detector's resolution.
    const aligned = alignFace(image, face.landmarks);
    if (!aligned) continue;
    const landmarks = face.landmarks.map((v, i) => v * (i % 2 === 0 ? sx : sy)) as Landmarks;
    found.push({ box, landmarks, score: face.score, blur: laplacianVariance(aligned.pixels, ALIGNED_SIZE, ALIGNED_SIZE) });
    crops.push(aligned.pixels);
  }
  if (crops.length === 0) return [];
  const embeddings = await embedder.embed(crops);
  const out: FaceResult[] = [];
  found.forEach((f, i) => {
    const embedding = embeddings[i];
    if (embedding) out.push({ ...f, embedding });
  });
  return out;
}

function clamp(v: number, max: number): number {
  return Math.min(Math.max(v, 0), max);
}

/** Inserts the faces (ids from the face_ids sequence) and hands the new rows to `onFacesWritten`. */
export async function writeFaces(
  conn: DuckDBConnection,
  results: { imageId: number; result: FaceResult[] }[],
  onFacesWritten?: (conn: DuckDBConnection, faces: WrittenFace[]) => Promise<void>,
): Promise<WrittenFace[]> {
  const duck = loadDuckDB();
  const rows = results.flatMap(({ imageId, result }) => result.map((face) => ({ imageId, face })));
  const rowTypes: DuckDBType[] = [
    duck.BIGINT, duck.FLOAT, duck.FLOAT, duck.FLOAT, duck.FLOAT, duck.ARRAY(duck.FLOAT, 10), duck.FLOAT, duck.FLOAT, duck.BLOB,
  ];
  const written: WrittenFace[] = [];
  for (let i = 0; i < rows.length; i += INSERT_CHUNK) {
    const chunk = rows.slice(i, i + INSERT_CHUNK);
    const params: DuckDBValue[] = [];
    const types: DuckDBType[] = [];
    const tuples = chunk.map(({ imageId, face }) => {
      const base = params.length;
      params.push(
        imageId,
        ...face.box,
        duck.arrayValue(face.landmarks),
        face.score,
        face.blur,
        duck.blobValue(new Uint8Array(face.embedding.buffer, face.embedding.byteOffset, face.embedding.byteLength)),
      );
      types.push(...rowTypes);
      return `(${rowTypes.map((_, k) => `$${base + k + 1}`).join(", ")})`;
    });
    const reader = await conn.runAndReadAll(
      `INSERT INTO faces (image_id, x0, y0, x1, y1, landmarks, score, blur, embedding) VALUES ${tuples.join(", ")} RETURNING id, image_id`,
      params,
      types,
    );
    const ids = reader.getRows();
    // RETURNING gives VALUES' order; checked, because a mismatch would tie embeddings to the wrong rows.
    if (ids.length !== chunk.length || ids.some((r, k) => Number(r[1]) !== chunk[k]!.imageId)) {
      throw new Error(`faces insert returned ${ids.length} rows not in insertion order; nothing was written`);
    }
    ids.forEach((r, k) => written.push({ id: Number(r[0]), imageId: chunk[k]!.imageId, embedding: chunk[k]!.face.embedding }));
  }
  if (written.length > 0 && onFacesWritten) await onFacesWritten(conn, written);
  return written;
}
