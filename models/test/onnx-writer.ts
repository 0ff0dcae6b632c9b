// A minimal ONNX protobuf encoder: just enough of ModelProto to write float/int64/8-bit graphs deterministically.
// Field numbers follow onnx/onnx.proto3; we write them by hand so the test models need no Python or protobuf package.
import { ProtobufWriter as Writer } from "../../src/engine/protobuf-writer.ts";

export const DataType = { FLOAT: 1, UINT8: 2, INT8: 3, INT32: 6, INT64: 7 } as const;
type DataTypeCode = (typeof DataType)[keyof typeof DataType];

export interface Tensor {
  name: string;
  dims: number[];
  dataType: DataTypeCode;
  /** Little-endian element bytes, stored as raw_data. */
  raw: Uint8Array;
}

export type AttributeValue = number | number[] | string;
/** Integers vs floats cannot be told apart from a JS number, so float attributes are tagged. */
export interface FloatAttr {
  float: number;
}

export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  attributes?: Record<string, AttributeValue | FloatAttr>;
}

export interface ValueInfo {
  name: string;
  elemType: DataTypeCode;
  /** A number is a fixed dimension, a string a symbolic (dynamic) one. */
  shape: (number | string)[];
}

export interface Graph {
  name: string;
  nodes: Node[];
  initializers: Tensor[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
}

export interface ModelOptions {
  irVersion: number;
  opset: number;
  producerName: string;
  docString?: string;
}

/**
 * Protobuf bytes as a list of parts: small fields go through a byte buffer, large payloads (tensor data) and nested
 * messages are kept by reference, so a model with hundreds of MB of weights is copied once, in finish().
 */
// AttributeProto.AttributeType
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

function encodeAttribute(name: string, value: AttributeValue | FloatAttr): Writer {
  const w = new Writer().string(1, name);
  if (typeof value === "string") return w.string(4, value).int(20, ATTR_STRING);
  if (Array.isArray(value)) {
    for (const v of value) w.int(8, v);
    return w.int(20, ATTR_INTS);
  }
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new Error(`attribute ${name}: wrap float values as { float: x }`);
    return w.int(3, value).int(20, ATTR_INT);
  }
  return w.float(2, value.float).int(20, ATTR_FLOAT);
}

function encodeNode(node: Node, index: number): Writer {
  const w = new Writer();
  for (const i of node.inputs) w.string(1, i);
  for (const o of node.outputs) w.string(2, o);
  w.string(3, `${node.opType}_${index}`);
  w.string(4, node.opType);
  // Sorted so the bytes do not depend on object key order at the call site.
  for (const key of Object.keys(node.attributes ?? {}).sort()) w.message(5, encodeAttribute(key, node.attributes![key]!));
  return w;
}

function encodeTensor(t: Tensor): Writer {
  const w = new Writer();
  for (const d of t.dims) w.int(1, d);
  return w.int(2, t.dataType).string(8, t.name).bytes(9, t.raw);
}

function encodeValueInfo(v: ValueInfo): Writer {
  const shape = new Writer();
  for (const d of v.shape) shape.message(1, typeof d === "number" ? new Writer().int(1, d) : new Writer().string(2, d));
  const tensorType = new Writer().int(1, v.elemType).message(2, shape);
  return new Writer().string(1, v.name).message(2, new Writer().message(1, tensorType));
}

export function encodeModel(graph: Graph, opts: ModelOptions): Uint8Array {
  const g = new Writer();
  graph.nodes.forEach((n, i) => g.message(1, encodeNode(n, i)));
  g.string(2, graph.name);
  for (const t of graph.initializers) g.message(5, encodeTensor(t));
  for (const v of graph.inputs) g.message(11, encodeValueInfo(v));
  for (const v of graph.outputs) g.message(12, encodeValueInfo(v));

  const m = new Writer().int(1, opts.irVersion).string(2, opts.producerName);
  if (opts.docString) m.string(6, opts.docString);
  m.message(7, g);
  m.message(8, new Writer().string(1, "").int(2, opts.opset));
  return m.finish();
}

export function floatTensor(name: string, dims: number[], values: ArrayLike<number>): Tensor {
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`${name}: ${values.length} values for dims [${dims}]`);
  const data = Float32Array.from(values);
  return { name, dims, dataType: DataType.FLOAT, raw: littleEndian(data.buffer, 4) };
}

export function int64Tensor(name: string, dims: number[], values: ArrayLike<number>): Tensor {
  const data = BigInt64Array.from(Array.from(values, (v) => BigInt(v)));
  return { name, dims, dataType: DataType.INT64, raw: littleEndian(data.buffer, 8) };
}

/** 8-bit weights (quantized models): one byte per element, so no byte order to care about. */
export function uint8Tensor(name: string, dims: number[], values: Uint8Array): Tensor {
  return { name, dims, dataType: DataType.UINT8, raw: byteCopy(name, dims, values) };
}

export function int8Tensor(name: string, dims: number[], values: Int8Array): Tensor {
  return { name, dims, dataType: DataType.INT8, raw: byteCopy(name, dims, values) };
}

function byteCopy(name: string, dims: number[], values: Uint8Array | Int8Array): Uint8Array {
  const count = dims.reduce((a, b) => a * b, 1);
  if (values.length !== count) throw new Error(`${name}: ${values.length} values for dims [${dims}]`);
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

function littleEndian(buffer: ArrayBufferLike, width: number): Uint8Array {
  const bytes = new Uint8Array(buffer.slice(0));
  const bigEndianHost = new Uint8Array(new Uint16Array([1]).buffer)[0] === 0;
  if (bigEndianHost) for (let i = 0; i < bytes.length; i += width) bytes.subarray(i, i + width).reverse();
  return bytes;
}
