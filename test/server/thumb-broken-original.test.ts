import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { RunningServer } from "../../src/server/server.ts";
import { indexedPhotos, photo, serve, type Fixture } from "./server-harness.ts";

describe("a thumbnail of an original that changed on disk since it was indexed", () => {
  let fx: Fixture;
  let server: RunningServer;
  const idOf = async (name: string) => {
    const body = (await (await fetch(`${server.url}/api/search?q=${name}&k=10`)).json()) as any;
    return body.hits.find((h: any) => h.path.endsWith(`/${name}`)).id as number;
  };

  beforeAll(async () => {
    fx = await indexedPhotos("thumb-broken", ["orange.jpg", "apple.jpg", "fruits.jpg", "rocket.jpg"]);
    server = await serve(fx);
  });
  afterAll(() => server?.stop());

  test("is a 404 naming why when the file is truncated, emptied or no image at all, never a 500", async () => {
    const cases: [string, Uint8Array, RegExp][] = [
      ["orange.jpg", photo("orange.jpg").subarray(0, 5000), /truncated/],
      ["apple.jpg", new TextEncoder().encode("garbage ".repeat(100)), /not an image/],
      ["fruits.jpg", new Uint8Array(), /./],
    ];
    for (const [name, bytes, why] of cases) {
      const id = await idOf(name);
      writeFileSync(join(fx.photos, name), bytes);
      const res = await fetch(`${server.url}/api/images/${id}/thumb?size=512`);
      expect(res.status).toBe(404);
      const body = (await res.json()) as any;
      expect(body.error).toContain(`image ${id} no longer reads as an image`);
      expect(body.error).toMatch(why);
    }
  });

  test("of a file now gigabytes long, reads only its ends to say why, never the whole file", async () => {
    const id = await idOf("rocket.jpg");
    // Sparse: a video or a disk image in the photo's place, 1 GiB that libvips refuses from its first bytes.
    writeFileSync(join(fx.photos, "rocket.jpg"), "not a photo at all");
    truncateSync(join(fx.photos, "rocket.jpg"), 2 ** 30);
    const peakBefore = process.resourceUsage().maxRSS * 1024;
    const res = await fetch(`${server.url}/api/images/${id}/thumb?size=512`);
    expect(res.status).toBe(404);
    expect(((await res.json()) as any).error).toMatch(/not an image/);
    expect(process.resourceUsage().maxRSS * 1024 - peakBefore).toBeLessThan(256 * 2 ** 20);
  });
});
