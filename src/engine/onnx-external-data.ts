// Rewrites an ONNX model so its large weights sit in a side file (ONNX's external data) at page-aligned offsets.
// onnxruntime maps such weights from the file instead of copying them out of the parsed protobuf: a weight only
// ever read in part (a text tower's token embedding, of which a query reads a few rows) stays mostly on disk, and
// opening a model no longer holds the parsed file and the weights at once.
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename } from "node:path";
import { ProtobufWriter } from "./protobuf-writer.ts";

// Field numbers from onnx.proto.
const MODEL_GRAPH = 7;
const GRAPH_INITIALIZER = 5;
const TENSOR_FLOAT_DATA = 4;
const TENSOR_RAW_DATA = 9;
const TENSOR_DOUBLE_DATA = 10;
const TENSOR_EXTERNAL_DATA = 13;
const TENSOR_DATA_LOCATION = 14;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const LOCATION_EXTERNAL = 1;

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_BYTES = 2;
const WIRE_FIXED32 = 5;

const PAGE = 4096;
const COPY_CHUNK = 8 << 20;

/** The source cannot be rewritten: it is not an ONNX model, or its weights are already outside it. */
export class NotMappableError extends Error {}

/** One field of a message in the source file: where its tag starts, where its value starts and ends. */
interface Field {
  number: number;
  wire: number;
  start: number;
  valueStart: number;
  end: number;
}

class Source {
  private readonly scratch = new Uint8Array(10);
  readonly size: number;

  constructor(readonly fd: number) {
    this.size = fstatSync(fd).size;
  }

  private varint(pos: number): { value: number; next: number } {
    const got = readSync(this.fd, this.scratch, 0, 10, pos);
    let value = 0;
    for (let i = 0, scale = 1; i < got; i++, scale *= 128) {
      const byte = this.scratch[i]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return { value, next: pos + i + 1 };
    }
    throw new NotMappableError("not an ONNX model: a field is cut off");
  }

  /** The fields of the message spanning [start, end). */
  fields(start: number, end: number): Field[] {
    const out: Field[] = [];
    for (let pos = start; pos < end; ) {
      const tag = this.varint(pos);
      const number = Math.floor(tag.value / 8);
      const wire = tag.value % 8;
      let valueStart = tag.next;
      let valueEnd: number;
      if (wire === WIRE_VARINT) valueEnd = this.varint(valueStart).next;
      else if (wire === WIRE_FIXED64) valueEnd = valueStart + 8;
      else if (wire === WIRE_FIXED32) valueEnd = valueStart + 4;
      else if (wire === WIRE_BYTES) {
        const length = this.varint(valueStart);
        valueStart = length.next;
        valueEnd = valueStart + length.value;
      } else throw new NotMappableError(`not an ONNX model: wire type ${wire}`);
      if (valueEnd > end) throw new NotMappableError("not an ONNX model: a field runs past its message");
      out.push({ number, wire, start: pos, valueStart, end: valueEnd });
      pos = valueEnd;
    }
    return out;
  }

  bytes(start: number, end: number): Uint8Array {
    const out = new Uint8Array(end - start);
    const got = readSync(this.fd, out, 0, out.length, start);
    if (got !== out.length) throw new NotMappableError("not an ONNX model: cut off");
    return out;
  }
}

export interface ExternalizeResult {
  /** Weights moved to the side file. */
  tensors: number;
  bytes: number;
}

/**
 * Writes `target` (the model) and `target + ".data"` (its weights of `minBytes` and up, each at a page boundary)
 * from the single-file model `source`. Both appear whole or not at all: they are written under temporary names and
 * renamed, weights first. A model that already keeps weights outside itself is refused.
 */
export function externalizeOnnx(source: string, target: string, minBytes = 64 * 1024): ExternalizeResult {
  const dataName = `${basename(target)}.data`;
  // Threads of one process may convert the same model at once: the pid alone would not keep them apart.
  const unique = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  const tmpModel = `${target}.${unique}.tmp`;
  const tmpData = `${target}.data.${unique}.tmp`;
  const src = new Source(openSync(source, "r"));
  let data: number;
  try {
    data = openSync(tmpData, "w");
  } catch (err) {
    closeSync(src.fd);
    throw err;
  }
  // Closed once only: a second close could hit a descriptor another thread has opened since.
  let dataOpen = true;
  const result: ExternalizeResult = { tensors: 0, bytes: 0 };
  let dataSize = 0;
  const copyOut = (from: number, length: number): number => {
    const offset = Math.ceil(dataSize / PAGE) * PAGE;
    const chunk = new Uint8Array(Math.min(COPY_CHUNK, length));
    for (let done = 0; done < length; ) {
      const n = readSync(src.fd, chunk, 0, Math.min(chunk.length, length - done), from + done);
      if (n <= 0) throw new NotMappableError(`${source} is cut off`);
      writeSync(data, chunk, 0, n, offset + done);
      done += n;
    }
    dataSize = offset + length;
    return offset;
  };
  const tensor = (f: Field): ProtobufWriter => {
    const out = new ProtobufWriter();
    let moved = false;
    for (const t of src.fields(f.valueStart, f.end)) {
      if (t.number === TENSOR_EXTERNAL_DATA || t.number === TENSOR_DATA_LOCATION) {
        throw new NotMappableError(`${source} already keeps its weights outside the model file`);
      }
      // Packed float_data and double_data hold the same little-endian bytes raw_data would (some exporters, such as
      // paddle2onnx, write weights that way); every other typed field is varint-encoded and stays in the model.
      const packedFloats = (t.number === TENSOR_FLOAT_DATA || t.number === TENSOR_DOUBLE_DATA) && t.wire === WIRE_BYTES;
      const rawBytes = t.number === TENSOR_RAW_DATA || packedFloats;
      if (rawBytes && t.end - t.valueStart >= minBytes) {
        const length = t.end - t.valueStart;
        const offset = copyOut(t.valueStart, length);
        for (const [key, value] of [["location", dataName], ["offset", String(offset)], ["length", String(length)]]) {
          out.message(TENSOR_EXTERNAL_DATA, new ProtobufWriter().string(ENTRY_KEY, key!).string(ENTRY_VALUE, value!));
        }
        result.tensors++;
        result.bytes += length;
        moved = true;
      } else out.encoded(src.bytes(t.start, t.end));
    }
    if (moved) out.int(TENSOR_DATA_LOCATION, LOCATION_EXTERNAL);
    return out;
  };
  try {
    const model = new ProtobufWriter();
    for (const f of src.fields(0, src.size)) {
      if (f.number !== MODEL_GRAPH || f.wire !== WIRE_BYTES) {
        model.encoded(src.bytes(f.start, f.end));
        continue;
      }
      const graph = new ProtobufWriter();
      for (const g of src.fields(f.valueStart, f.end)) {
        if (g.number === GRAPH_INITIALIZER && g.wire === WIRE_BYTES) graph.message(GRAPH_INITIALIZER, tensor(g));
        else graph.encoded(src.bytes(g.start, g.end));
      }
      model.message(MODEL_GRAPH, graph);
    }
    const out = openSync(tmpModel, "w");
    try {
      writeSync(out, model.finish());
      fsyncSync(out);
    } finally {
      closeSync(out);
    }
    fsyncSync(data);
    closeSync(data);
    dataOpen = false;
    renameSync(tmpData, `${target}.data`);
    renameSync(tmpModel, target);
    return result;
  } catch (err) {
    rmSync(tmpModel, { force: true });
    rmSync(tmpData, { force: true });
    throw err;
  } finally {
    closeSync(src.fd);
    if (dataOpen) closeSync(data);
  }
}
