// The persons and faces routes on an index built without --faces: reads answer empty, writes are refused with the
// reason and create nothing, and an index where an older build left the persons tables without faces still reads.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { openPersonsCatalog } from "../../src/engine/faces/persons-catalog.ts";
import { PERSONS_DDL } from "../../src/engine/faces/persons-table.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { indexedPhotos, serve, type Fixture } from "./server-harness.ts";

const NO_FACES = { error: "this index has no faces yet: face detection finds them when images are indexed, or ingested (POST /api/ingest) on a server that runs it" };

describe("persons API on an index without faces", () => {
  let fx: Fixture;
  let server: RunningServer | undefined;

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server!.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const tables = async () => {
    const db = await openPersonsCatalog(fx.index, { readOnly: true });
    try {
      return (await db.read("SELECT table_name FROM duckdb_tables() ORDER BY 1")).map((r) => r[0]);
    } finally {
      db.close();
    }
  };

  beforeAll(async () => {
    fx = await indexedPhotos("no-faces", ["messi5.jpg", "chelsea.png"]);
  }, 120_000);
  afterAll(() => server?.stop());

  test("reads answer empty or 404, writes are 409 with the reason, and no table is created", async () => {
    const before = await tables();
    server = await serve(fx);
    expect(await call("GET", "/api/persons")).toEqual({ status: 200, body: { total: 0, persons: [] } });
    expect(await call("GET", "/api/faces?image=1")).toEqual({ status: 200, body: { image: 1, faces: [] } });
    expect(await call("GET", "/api/persons/42")).toEqual({ status: 404, body: { error: "no person 42" } });
    expect(await call("GET", "/api/persons/42/suggestions")).toEqual({ status: 404, body: { error: "no person 42" } });
    expect(await call("GET", "/api/faces/1/similar")).toEqual({ status: 404, body: { error: "no face 1" } });

    expect(await call("POST", "/api/persons/42/reject", { face_ids: [1] })).toEqual({ status: 409, body: NO_FACES });
    expect(await call("POST", "/api/persons", { name: "Alice" })).toEqual({ status: 409, body: NO_FACES });
    expect(await call("POST", "/api/persons/42/assign", { face_ids: [1] })).toEqual({ status: 409, body: NO_FACES });
    expect(await call("POST", "/api/faces/unassign", { face_ids: [1] })).toEqual({ status: 409, body: NO_FACES });
    expect(await call("POST", "/api/faces/suggestions")).toEqual({ status: 409, body: NO_FACES });
    expect(await call("GET", "/api/persons")).toEqual({ status: 200, body: { total: 0, persons: [] } });
    await server.stop();
    server = undefined;
    expect(await tables()).toEqual(before);
  });

  test("persons tables an older build created without faces read as no persons", async () => {
    const db = await openPersonsCatalog(fx.index, { readOnly: false });
    await db.write(async (conn) => {
      for (const statement of PERSONS_DDL) await conn.run(statement);
    });
    db.close();
    server = await serve(fx);
    expect(await call("GET", "/api/persons")).toEqual({ status: 200, body: { total: 0, persons: [] } });
    expect(await call("GET", "/api/persons/1")).toEqual({ status: 404, body: { error: "no person 1" } });
    expect(await call("POST", "/api/persons/1/reject", { face_ids: [1] })).toEqual({ status: 409, body: NO_FACES });
  });
});
