// --path-map as a worker uses it: every canonical path of the job must come back as itself after the round trip
// through this host's paths, or the shard stores a file under another file's path.
import { expect, test } from "bun:test";
import { parsePathMaps, pathMapConflict, toCanonicalPath, toLocalPath } from "../../src/engine/path-map.ts";

const roundTrip = (path: string, maps: ReturnType<typeof parsePathMaps>) => toCanonicalPath(toLocalPath(path, maps), maps);

test("a map from or to / applies to every path beneath it, both ways", () => {
  const intoMount = parsePathMaps(["/=/mnt/coordinator"]);
  expect(toLocalPath("/photos/a.jpg", intoMount)).toBe("/mnt/coordinator/photos/a.jpg");
  expect(toCanonicalPath("/mnt/coordinator/photos/a.jpg", intoMount)).toBe("/photos/a.jpg");
  const outOfMount = parsePathMaps(["/mnt/c=/"]);
  expect(toLocalPath("/mnt/c/photos/a.jpg", outOfMount)).toBe("/photos/a.jpg");
  expect(toLocalPath("/mnt/c", outOfMount)).toBe("/");
  expect(roundTrip("/mnt/c/photos/a.jpg", outOfMount)).toBe("/mnt/c/photos/a.jpg");
});

test("maps that nest differently on the two sides, share a TO, or map onto a canonical root are found; consistent ones are not", () => {
  const conflict = (specs: string[], roots: string[]) => pathMapConflict(parsePathMaps(specs), roots);
  // /photos/old/x would be read at /mnt/p/old/x, which the second map reads back as /photos/2020/x.
  expect(conflict(["/photos=/mnt/p", "/photos/2020=/mnt/p/old"], ["/photos"])).toEqual({
    canonical: "/photos/old",
    local: "/mnt/p/old",
    storedAs: "/photos/2020",
  });
  expect(conflict(["/a=/x", "/b=/x"], ["/a", "/b"])).toEqual({ canonical: "/b", local: "/x", storedAs: "/a" });
  // FROM and TO swapped, on a host that sees the coordinator's path too.
  expect(conflict(["/Volumes/p=/mnt/p"], ["/mnt/p"])).toEqual({ canonical: "/mnt/p", local: "/mnt/p", storedAs: "/Volumes/p" });

  expect(conflict(["/photos=/mnt/p"], ["/photos"])).toBeNull();
  expect(conflict(["/photos=/mnt/p", "/photos/archive=/mnt/archive"], ["/photos"])).toBeNull();
  expect(conflict(["/photos=/mnt/p", "/photos/2020=/mnt/p/2020"], ["/photos"])).toBeNull();
  // The nested TO is reached only from its own FROM: /photos/old goes elsewhere.
  expect(conflict(["/photos=/mnt/p", "/photos/old=/mnt/q", "/photos/2020=/mnt/p/old"], ["/photos"])).toBeNull();
  // A TO that is canonical somewhere outside the job's roots harms nothing.
  expect(conflict(["/data=/photos"], ["/elsewhere"])).toBeNull();
});
