// The worker thread that decodes HEIC coded with HEVC (a phone's photos): sharp's prebuilt libvips has no HEVC
// decoder (a patent matter), so libheif 1.23 with libde265, compiled to WebAssembly (the npm package libheif-js,
// LGPL-3.0, whose bundle carries the wasm inline and so goes into the compiled binary too), decodes them here. A wasm
// call runs to its end without yielding, which on the server's or the pipeline's thread would stall everything else
// for the half second a 12 MP photo takes. heic-decoder.ts runs these threads.
import libheif from "libheif-js/libheif-wasm/libheif-bundle.js";
import type { WorkerReply } from "./worker-calls.ts";

export type HeicRequest = { type: "decode"; id: number; bytes: Uint8Array };

/** The primary image, upright (libheif applies the irot, imir and clap boxes), 8-bit RGB or RGBA rows. */
export interface HeicPixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: 3 | 4;
  /** The size the wasm instance's memory has grown to: it never shrinks, so heic-decoder.ts ends a thread that grew. */
  heapBytes: number;
}

/** The part of libheif-js's embind surface used here (libheif-wasm/libheif.d.ts has it all). */
interface Enum {
  value: number;
}
interface HeifError {
  code: Enum;
  subcode?: Enum;
  message: string;
}
type Handle = { delete(): void };
interface LibHeif {
  HEAPU8: Uint8Array;
  heif_colorspace: { heif_colorspace_RGB: Enum };
  heif_chroma: { heif_chroma_interleaved_RGB: Enum; heif_chroma_interleaved_RGBA: Enum };
  heif_context_alloc(): Handle;
  heif_context_free(ctx: Handle): void;
  heif_context_read_from_memory(ctx: Handle, bytes: Uint8Array): HeifError;
  heif_js_context_get_primary_image_handle(ctx: Handle): Handle | HeifError;
  heif_image_handle_has_alpha_channel(handle: Handle): number;
  heif_image_handle_release(handle: Handle): void;
  heif_js_decode_image2(handle: Handle, colorspace: Enum, chroma: Enum): DecodedPlanes | HeifError;
  heif_image_release(image: Handle): void;
}
interface DecodedPlanes {
  image: Handle;
  width: number;
  height: number;
  channels: { data: Uint8Array; stride: number; width: number; height: number; bits_per_pixel: number }[];
}

const isError = (value: unknown): value is HeifError => !value || typeof (value as HeifError).code === "object";

function failed(what: string, error: HeifError | null | undefined): Error {
  const code = error?.code?.value;
  return new Error(`libheif: ${what}: ${error?.message || "unknown error"}${code ? ` (error ${code}.${error?.subcode?.value ?? 0})` : ""}`);
}

/** Decodes the primary image of a HEIF file (thumbnails, depth and other auxiliary images are not looked at). */
export function decodeHeif(lib: LibHeif, bytes: Uint8Array): Omit<HeicPixels, "heapBytes"> {
  const ctx = lib.heif_context_alloc();
  let handle: Handle | null = null;
  let image: Handle | null = null;
  try {
    const read = lib.heif_context_read_from_memory(ctx, bytes);
    if (read.code.value !== 0) throw failed("cannot read the file", read);
    const primary = lib.heif_js_context_get_primary_image_handle(ctx);
    if (isError(primary)) throw failed("no primary image", primary);
    handle = primary;
    const channels = lib.heif_image_handle_has_alpha_channel(handle) ? 4 : 3;
    const chroma = channels === 4 ? lib.heif_chroma.heif_chroma_interleaved_RGBA : lib.heif_chroma.heif_chroma_interleaved_RGB;
    // libheif converts a 10- or 12-bit image down to the 8 bits asked for, and applies its transformations.
    const decoded = lib.heif_js_decode_image2(handle, lib.heif_colorspace.heif_colorspace_RGB, chroma);
    if (isError(decoded)) throw failed("cannot decode the image", decoded);
    image = decoded.image;
    const plane = decoded.channels[0];
    const row = (plane?.width ?? 0) * channels;
    // bits_per_pixel is per channel (libheif's "range"): 8, as asked.
    if (!plane || plane.bits_per_pixel !== 8 || plane.stride < row) throw new Error("libheif: decoded to an unexpected pixel layout");
    // The plane is a view into wasm memory, which the next decode overwrites: copied out, row by row when padded.
    const data = new Uint8Array(row * plane.height);
    if (plane.stride === row) data.set(plane.data.subarray(0, data.length));
    else for (let y = 0; y < plane.height; y++) data.set(plane.data.subarray(y * plane.stride, y * plane.stride + row), y * row);
    return { data, width: plane.width, height: plane.height, channels };
  } finally {
    if (image) lib.heif_image_release(image);
    if (handle) lib.heif_image_handle_release(handle);
    lib.heif_context_free(ctx);
  }
}

/** The wasm instance, made on first use: compiling it takes ~0.2 s, which a process that meets no HEIC never pays. */
let instance: LibHeif | null = null;
export function libheifInstance(): LibHeif {
  return (instance ??= (libheif as unknown as () => LibHeif)());
}

declare const self: Worker;

// Only when run as a thread: tests import decodeHeif on their own thread.
if (typeof self !== "undefined" && !Bun.isMainThread) {
  self.onmessage = (event: MessageEvent<HeicRequest>) => {
    const { id, bytes } = event.data;
    try {
      const lib = libheifInstance();
      const pixels: HeicPixels = { ...decodeHeif(lib, bytes), heapBytes: lib.HEAPU8.byteLength };
      self.postMessage({ type: "done", id, result: pixels } satisfies WorkerReply<HeicPixels>, [pixels.data.buffer]);
    } catch (err) {
      // heic-decoder.ts ends a thread whose decode failed, with its instance (a trap may have left it unusable).
      self.postMessage({ type: "error", id, message: err instanceof Error ? err.message : String(err) } satisfies WorkerReply<HeicPixels>);
    }
  };
}
