// One byte range of a representation (RFC 9110 14.1.2). A route answers it itself rather than leaving it to Bun,
// which would turn a 200 into a 206 or 416 after the logs and metrics had counted a 200.

export type ByteRange = { start: number; end: number } | "unsatisfiable";

/**
 * The single range a Range header asks of `size` bytes (end inclusive), "unsatisfiable" for a 416, or undefined
 * when the whole representation is the answer: no header, another unit, bad syntax, or several ranges (which a
 * server may answer in full rather than as multipart).
 */
export function parseByteRange(header: string | undefined, size: number): ByteRange | undefined {
  const m = header?.trim().match(/^bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === "" ? Infinity : Number(m[2]);
  if (last < start) return undefined;
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(last, size - 1) };
}

/**
 * Whether a range request's If-Range still holds. Only a date equal to Last-Modified does here: the route's ETag is
 * weak, and If-Range compares entity tags strongly.
 */
export function ifRangeHolds(header: string | undefined, lastModified: string): boolean {
  if (header === undefined) return true;
  if (header.trim().startsWith('"') || header.trim().startsWith("W/")) return false;
  return header.trim() === lastModified;
}
