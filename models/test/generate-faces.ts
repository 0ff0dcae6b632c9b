// Writes "test-scrfd" and "test-arcface": small real ONNX models with the signatures of insightface's SCRFD det_10g
// (input.1 1x3x640x640 -> score/bbox/kps at strides 8, 16, 32 with 2 anchors per location, in scrfd.py's layout)
// and ArcFace (input.1 Nx3x112x112 -> N x 512), whose outputs are computed from the pixels. Tests need faces that
// are found where they were planted, and embeddings that tell two planted faces apart, without pretrained weights.
//
//   bun models/test/generate-faces.ts [modelsDir]      (default models/; also run by generate.ts)
//
// The detector: a pixel is "skin" when its colour is within SKIN_RADIUS of SKIN_RGB (a squared-distance 1x1 Conv +
// a steep Sigmoid); a 5x5 erosion drops stray pixels; the row/column extents of the eroded mask (grown back by the
// erosion radius) are the one face box per image, with the 5 landmarks at ArcFace's template positions inside it.
// Each stride's cell scores a sigmoid of how much of it the mask covers, and every anchor of a scoring cell encodes
// the same box and landmarks as SCRFD distances from its centre, so decoding + NMS give back one face.
// The embedder: the crop pooled to 8x8, minus its per-channel mean, through a fixed seeded random projection.
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { mulberry32 } from "../../src/engine/seeded-random.ts";
import { writeIfChanged } from "./generate.ts";
import { erodedExtents } from "./mask-extents.ts";
import { DataType, encodeModel, floatTensor, int64Tensor, type Graph, type Node, type Tensor } from "./onnx-writer.ts";

export const DETECTOR_SIZE = 640;
export const STRIDES = [8, 16, 32] as const;
export const ANCHORS_PER_LOCATION = 2;
/** The colour the test detector calls skin, and how far (in 0..255 RGB distance) a pixel may be from it. */
export const SKIN_RGB = [230, 180, 150] as const;
export const SKIN_RADIUS = 40;
const EROSION_RADIUS = 2;
/** Cell score = sigmoid(12 (coverage - 0.5)): a fully covered cell scores 0.9975, a quarter-covered one 0.047. */
const SCORE_GAIN = 12;
/** SCRFD's input normalisation, (x - 127.5) / 128. */
const MEAN = 127.5;
const STD = 128;
/** insightface's arcface_dst, as fractions of the 112x112 crop: where the test detector puts landmarks in its box. */
const TEMPLATE = [38.2946, 51.6963, 73.5318, 51.5014, 56.0252, 71.7366, 41.5493, 92.3655, 70.7299, 92.2041].map((v) => v / 112);

export const EMBED_SIZE = 112;
export const EMBED_DIMS = 512;
const EMBED_GRID = 8;
const EMBED_SEED = 0xfacef00d;

function detectorGraph(): Graph {
  const nodes: Node[] = [];
  const initializers: Tensor[] = [];
  const op = (opType: string, inputs: string[], output: string, attributes?: Node["attributes"]) => {
    nodes.push({ opType, inputs, outputs: [output], attributes });
    return output;
  };
  const r2 = (SKIN_RADIUS / STD) ** 2;
  // Steep enough that the mask is 1 (in float32) at the skin colour itself and ~0 a little past the radius.
  const k = 50 / r2;
  const size = DETECTOR_SIZE;
  initializers.push(
    floatTensor("skin", [1, 3, 1, 1], SKIN_RGB.map((v) => (v - MEAN) / STD)),
    floatTensor("distance_w", [1, 3, 1, 1], [-k, -k, -k]),
    floatTensor("distance_b", [1], [k * r2]),
    floatTensor("plus_one", [size], Float32Array.from({ length: size }, (_, i) => i + 1)),
    floatTensor("from_end", [size], Float32Array.from({ length: size }, (_, i) => size - i)),
    floatTensor("extent_sign", [1, 4], [-1, -1, 1, 1]),
    floatTensor("extent_offset", [1, 4], [size - EROSION_RADIUS, size - EROSION_RADIUS, EROSION_RADIUS, EROSION_RADIUS]),
    floatTensor("zero", [], [0]),
    floatTensor("size", [], [size]),
    floatTensor("half", [], [0.5]),
    floatTensor("score_gain", [], [SCORE_GAIN]),
  );

  op("Sub", ["input.1", "skin"], "skin_diff");
  op("Mul", ["skin_diff", "skin_diff"], "skin_diff_sq");
  op("Conv", ["skin_diff_sq", "distance_w", "distance_b"], "skin_logits", { kernel_shape: [1, 1] });
  op("Sigmoid", ["skin_logits"], "mask");
  erodedExtents(op, "mask", EROSION_RADIUS, 0);
  op("Concat", ["x_start_rev", "y_start_rev", "x_end", "y_end"], "extents_raw", { axis: 1 });
  op("Mul", ["extents_raw", "extent_sign"], "extents_signed");
  op("Add", ["extents_signed", "extent_offset"], "extents_grown");
  op("Max", ["extents_grown", "zero"], "extents_low");
  // The face box x0 y0 x1 y1 in input pixels, [1, 4].
  op("Min", ["extents_low", "size"], "box");

  // Landmark k = box corner mix: x = x0 (1 - fx) + x1 fx, y = y0 (1 - fy) + y1 fy.
  const kpsW = new Float32Array(4 * 10);
  for (let p = 0; p < 5; p++) {
    const fx = TEMPLATE[2 * p]!;
    const fy = TEMPLATE[2 * p + 1]!;
    kpsW[0 * 10 + 2 * p] = 1 - fx;
    kpsW[2 * 10 + 2 * p] = fx;
    kpsW[1 * 10 + 2 * p + 1] = 1 - fy;
    kpsW[3 * 10 + 2 * p + 1] = fy;
  }
  initializers.push(floatTensor("kps_w", [4, 10], kpsW));
  op("MatMul", ["box", "kps_w"], "kps");

  const scores: string[] = [];
  const boxes: string[] = [];
  const kpss: string[] = [];
  for (const s of STRIDES) {
    const n = size / s;
    const cells = n * n;
    // SCRFD distances are in stride units from the anchor centre (col * s, row * s).
    const boxCentre = new Float32Array(cells * 4);
    const kpsCentre = new Float32Array(cells * 10);
    for (let row = 0; row < n; row++) {
      for (let col = 0; col < n; col++) {
        const i = row * n + col;
        boxCentre.set([col, row, -col, -row], i * 4);
        for (let p = 0; p < 5; p++) kpsCentre.set([-col, -row], i * 10 + 2 * p);
      }
    }
    initializers.push(
      floatTensor(`box_centre_${s}`, [cells, 4], boxCentre),
      floatTensor(`box_scale_${s}`, [1, 4], [-1 / s, -1 / s, 1 / s, 1 / s]),
      floatTensor(`kps_centre_${s}`, [cells, 10], kpsCentre),
      floatTensor(`inv_stride_${s}`, [], [1 / s]),
      int64Tensor(`score_shape_${s}`, [2], [cells, 1]),
      int64Tensor(`anchor_score_shape_${s}`, [2], [cells * ANCHORS_PER_LOCATION, 1]),
      int64Tensor(`anchor_box_shape_${s}`, [2], [cells * ANCHORS_PER_LOCATION, 4]),
      int64Tensor(`anchor_kps_shape_${s}`, [2], [cells * ANCHORS_PER_LOCATION, 10]),
    );
    op("AveragePool", ["eroded"], `cover_${s}`, { kernel_shape: [s, s], strides: [s, s] });
    op("Sub", [`cover_${s}`, "half"], `cover_centred_${s}`);
    op("Mul", [`cover_centred_${s}`, "score_gain"], `score_logits_${s}`);
    op("Sigmoid", [`score_logits_${s}`], `score_map_${s}`);
    op("Reshape", [`score_map_${s}`, `score_shape_${s}`], `cell_score_${s}`);
    // Anchors of one location are consecutive rows: [cells, 2] then [cells * 2, 1].
    const dup = (what: string, shape: string, out: string) => {
      op("Concat", [what, what], `${what}_x2`, { axis: 1 });
      return op("Reshape", [`${what}_x2`, shape], out);
    };
    scores.push(dup(`cell_score_${s}`, `anchor_score_shape_${s}`, `score_${s}`));
    op("Mul", ["box", `box_scale_${s}`], `box_scaled_${s}`);
    op("Add", [`box_centre_${s}`, `box_scaled_${s}`], `cell_box_${s}`);
    boxes.push(dup(`cell_box_${s}`, `anchor_box_shape_${s}`, `bbox_${s}`));
    op("Mul", ["kps", `inv_stride_${s}`], `kps_scaled_${s}`);
    op("Add", [`kps_centre_${s}`, `kps_scaled_${s}`], `cell_kps_${s}`);
    kpss.push(dup(`cell_kps_${s}`, `anchor_kps_shape_${s}`, `kps_${s}`));
  }

  const anchors = (s: number) => (size / s) ** 2 * ANCHORS_PER_LOCATION;
  return {
    name: "test_scrfd",
    inputs: [{ name: "input.1", elemType: DataType.FLOAT, shape: [1, 3, size, size] }],
    outputs: [
      ...STRIDES.map((s) => ({ name: `score_${s}`, elemType: DataType.FLOAT, shape: [anchors(s), 1] })),
      ...STRIDES.map((s) => ({ name: `bbox_${s}`, elemType: DataType.FLOAT, shape: [anchors(s), 4] })),
      ...STRIDES.map((s) => ({ name: `kps_${s}`, elemType: DataType.FLOAT, shape: [anchors(s), 10] })),
    ],
    initializers,
    nodes,
  };
}

// Irwin-Hall instead of Box-Muller: no log/cos, whose last bits may differ between engines.
function gaussian(rand: () => number): number {
  let s = 0;
  for (let i = 0; i < 12; i++) s += rand();
  return s - 6;
}

function embedderGraph(dims: number): Graph {
  const rand = mulberry32(EMBED_SEED);
  const features = 3 * EMBED_GRID * EMBED_GRID;
  const projection = Float32Array.from({ length: features * dims }, () => gaussian(rand) / Math.sqrt(features));
  const cell = EMBED_SIZE / EMBED_GRID;
  return {
    name: "test_arcface",
    inputs: [{ name: "input.1", elemType: DataType.FLOAT, shape: ["batch", 3, EMBED_SIZE, EMBED_SIZE] }],
    outputs: [{ name: "embedding", elemType: DataType.FLOAT, shape: ["batch", dims] }],
    initializers: [int64Tensor("flat_shape", [2], [-1, features]), floatTensor("projection", [features, dims], projection)],
    nodes: [
      { opType: "AveragePool", inputs: ["input.1"], outputs: ["grid"], attributes: { kernel_shape: [cell, cell], strides: [cell, cell] } },
      // Without the per-channel mean, every skin-coloured face would share one large component and look alike.
      { opType: "ReduceMean", inputs: ["grid"], outputs: ["grid_mean"], attributes: { axes: [2, 3], keepdims: 1 } },
      { opType: "Sub", inputs: ["grid", "grid_mean"], outputs: ["grid_centred"] },
      { opType: "Reshape", inputs: ["grid_centred", "flat_shape"], outputs: ["features"] },
      { opType: "MatMul", inputs: ["features", "projection"], outputs: ["embedding"] },
    ],
  };
}

const OPTIONS = { irVersion: 8, opset: 17, producerName: "imgd models/test/generate-faces.ts" };

export function buildTestScrfd(): Uint8Array {
  return encodeModel(detectorGraph(), { ...OPTIONS, docString: "test-scrfd: SCRFD det_10g signature; one box around the skin-coloured region" });
}

/** `dims` other than ArcFace's 512: a face embedder of another size, as switching `--face-embedder` may bring. */
export function buildTestArcface(dims = EMBED_DIMS): Uint8Array {
  return encodeModel(embedderGraph(dims), { ...OPTIONS, docString: "test-arcface: ArcFace signature; random projection of the pooled crop" });
}

/** Writes `<modelsDir>/test-scrfd/model.onnx` and `<modelsDir>/test-arcface/model.onnx` when their bytes change. */
export function generateTestFaces(modelsDir: string): { path: string; written: boolean }[] {
  const files: [string, () => Uint8Array][] = [
    ["test-scrfd", buildTestScrfd],
    ["test-arcface", buildTestArcface],
  ];
  return files.map(([name, build]) => {
    const dir = join(modelsDir, name);
    mkdirSync(dir, { recursive: true });
    const path = join(dir, "model.onnx");
    return { path, written: writeIfChanged(path, build()) };
  });
}

if (import.meta.main) {
  const modelsDir = resolve(process.argv[2] ?? join(import.meta.dir, ".."));
  for (const r of generateTestFaces(modelsDir)) console.log(`${r.written ? "wrote" : "unchanged"} ${r.path}`);
}
