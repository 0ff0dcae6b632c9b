// glibc's malloc, which onnxruntime, DuckDB and libvips allocate from, keeps what they free for reuse: a long-lived
// process ends up holding its load-time garbage (an ONNX model is parsed, then copied into prepacked weights) and
// its largest batch's activations for good. Measured with CLIP ViT-B/32's int8 image tower: +168 MB after opening
// it, +115 MB once that is handed back. Both calls are glibc's own; elsewhere (musl) they are skipped.
import { dlopen, FFIType, ptr } from "bun:ffi";

/** mallopt's parameter number for M_MMAP_THRESHOLD (glibc malloc.h). */
const M_MMAP_THRESHOLD = -3;

interface Glibc {
  mallopt(param: number, value: number): number;
  malloc_trim(pad: number): number;
  setenv(name: number, value: number, overwrite: number): number;
}

let libc: Glibc | null | undefined;

function glibc(): Glibc | null {
  if (libc !== undefined) return libc;
  try {
    libc = dlopen("libc.so.6", {
      mallopt: { args: [FFIType.i32, FFIType.i32], returns: FFIType.i32 },
      malloc_trim: { args: [FFIType.u64], returns: FFIType.i32 },
      setenv: { args: [FFIType.ptr, FFIType.ptr, FFIType.i32], returns: FFIType.i32 },
    }).symbols as unknown as Glibc;
  } catch {
    libc = null;
  }
  return libc;
}

/**
 * Blocks of `bytes` and up come straight from mmap and go back to the system when freed. glibc raises this
 * threshold on its own as large blocks are freed (up to 32 MB), after which a freed tensor stays in the heap;
 * setting it fixes it. For a worker, whose towers keep onnxruntime's arena; not for sessions without it, whose
 * every activation would then be mmapped and unmapped (batched text runs 1.6-2x slower): those trim after each run.
 */
export function returnLargeBlocks(bytes = 128 * 1024): void {
  glibc()?.mallopt(M_MMAP_THRESHOLD, bytes);
}

/** Hands the free memory at the top and in the middle of glibc's heaps back to the system. */
export function trimFreedMemory(): void {
  glibc()?.malloc_trim(0);
}

/**
 * Sets `name` in the C environment that native libraries read with getenv, unless it is set already (the user's own
 * choice stands). Bun's process.env does not reach it.
 */
export function setNativeEnvDefault(name: string, value: string): void {
  const c = (text: string) => ptr(Buffer.from(`${text}\0`));
  glibc()?.setenv(c(name), c(value), 0);
}
