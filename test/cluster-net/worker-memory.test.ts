import { expect, test } from "bun:test";
import { isOutOfMemory, memoryBatchSize } from "../../src/cluster-net/worker.ts";

test("out-of-memory failures from onnxruntime, V8 and the OS are recognised; other errors are not", () => {
  expect(isOutOfMemory(new RangeError("Array buffer allocation failed"))).toBe(true);
  expect(isOutOfMemory(new Error("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : std::bad_alloc"))).toBe(true);
  expect(isOutOfMemory(new Error("ENOMEM: not enough memory, read"))).toBe(true);
  expect(isOutOfMemory(new Error("Failed to allocate memory for requested buffer of size 123"))).toBe(true);
  expect(isOutOfMemory(new Error("ENOENT: no such file"))).toBe(false);
});

test("the starting batch size fits a quarter of free memory and never drops below one", () => {
  const perImage = 3 * 224 * 224 * 4 * 16;
  expect(memoryBatchSize(32, 224, 64 * 2 ** 30)).toBe(32);
  expect(memoryBatchSize(32, 224, perImage * 4 * 10)).toBe(10);
  expect(memoryBatchSize(32, 224, 1000)).toBe(1);
});
