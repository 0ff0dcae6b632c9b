// The persons API on the real app over a real test-clip index whose faces table holds synthetic embeddings of three
// known identities, clustered into persons by the engine before the server starts.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { join } from "node:path";
import { clusterFaces } from "../../src/engine/faces/face-clustering.ts";
import { openPersonsCatalog } from "../../src/engine/faces/persons-catalog.ts";
import { loadDuckDB } from "../../src/engine/native.ts";
import type { RunningServer } from "../../src/server/server.ts";
import { FACE_DIMS, facesOf, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";
import { indexedPhotos, serve, type Fixture } from "./server-harness.ts";

describe("persons API", () => {
  let fx: Fixture;
  let server: RunningServer;
  let imageIds: number[];
  const identityFaces = new Map<number, number[]>();
  const imageOfFace = new Map<number, number>();

  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: body === undefined ? {} : { "Content-Type": "application/json" },
      body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };
  const personOfFace = async (faceId: number) => {
    const { body } = await call("GET", `/api/faces?image=${imageOfFace.get(faceId)}`);
    return body.faces.find((f: any) => f.id === faceId).person_id as number | null;
  };

  beforeAll(async () => {
    fx = await indexedPhotos("persons", ["messi5.jpg", "astronaut.png", "chelsea.png"]);
    const db = await openPersonsCatalog(fx.index, { readOnly: true });
    imageIds = (await db.read("SELECT id FROM images ORDER BY path")).map((r) => Number(r[0]));
    db.close();
    // Identity i has 4 + 2i faces, so persons come back in a known order of size.
    const identityOf = [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2];
    const vectors = facesOf(unitVectors(3, FACE_DIMS, 31), identityOf, 0.8, 8);
    const ids = await insertFaces(
      join(fx.index, "catalog.duckdb"),
      identityOf.map((_, i) => ({ imageId: imageIds[i % 3]!, embedding: row(vectors, i) })),
    );
    ids.forEach((id, i) => {
      identityFaces.set(identityOf[i]!, [...(identityFaces.get(identityOf[i]!) ?? []), id]);
      imageOfFace.set(id, imageIds[i % 3]!);
    });
    const rw = await openPersonsCatalog(fx.index, { readOnly: false });
    await rw.write((conn) => clusterFaces(conn, { minClusterSize: 3 }));
    rw.close();
    server = await serve(fx);
  }, 120_000);
  afterAll(() => server?.stop());

  test("GET /api/persons lists the clusters, largest first, and each person's faces have thumbnails that resolve", async () => {
    const { status, body } = await call("GET", "/api/persons");
    expect(status).toBe(200);
    expect(body.total).toBe(3);
    expect(body.persons.map((p: any) => [p.name, p.faces])).toEqual([[null, 8], [null, 6], [null, 4]]);
    const biggest = body.persons[0];
    const one = await call("GET", `/api/persons/${biggest.id}`);
    expect(one.status).toBe(200);
    expect(one.body.faces.map((f: any) => f.id).sort((a: number, b: number) => a - b)).toEqual(identityFaces.get(2));
    expect(one.body.faces.every((f: any) => f.assigned_by === "cluster" && f.box.length === 4)).toBe(true);
    // Each face carries its photo's pixel size (the space of its box, which a face crop needs), and the list each
    // person's cover face.
    const image = (await call("GET", `/api/images/${one.body.faces[0].image_id}`)).body;
    expect([one.body.faces[0].image_width, one.body.faces[0].image_height]).toEqual([image.width, image.height]);
    expect(image.width).toBeGreaterThan(0);
    expect(biggest.cover).toMatchObject({ id: biggest.cover_face_id, person_id: biggest.id, image_width: expect.any(Number) });
    expect(body.persons.every((p: any) => p.cover?.id === p.cover_face_id)).toBe(true);
    const thumb = await fetch(`${server.url}${one.body.faces[0].thumb}`);
    expect(thumb.status).toBe(200);
    expect(thumb.headers.get("content-type")).toStartWith("image/");
  });

  test("a search names several persons by repeating person: each must be in the photo, and each must exist", async () => {
    const [a, b] = (await call("GET", "/api/persons")).body.persons.map((p: any) => p.id);
    const both = await call("GET", `/api/search?person=${a}&person=${b}`);
    expect(both.status).toBe(200);
    // Every identity has faces on all three images here, so all three hold both.
    expect(both.body.hits.map((h: any) => h.id).sort()).toEqual([...imageIds].sort());
    const unknown = await call("GET", `/api/search?person=${a}&person=99999`);
    expect(unknown.status).toBe(400);
    expect(unknown.body.error).toContain('no person "99999"');
  });

  test("naming: the name shows on the image's faces; a taken name is 409, bad input 400, an unknown person 404", async () => {
    const alice = (await personOfFace(identityFaces.get(0)![0]!))!;
    const named = await call("POST", `/api/persons/${alice}/name`, { name: "Alice" });
    expect(named.status).toBe(200);
    expect(named.body).toMatchObject({ id: alice, name: "Alice", faces: 4 });
    const faces = await call("GET", `/api/faces?image=${imageOfFace.get(identityFaces.get(0)![0]!)}`);
    expect(faces.body.faces.filter((f: any) => f.person === "Alice").length).toBeGreaterThan(0);

    const other = (await personOfFace(identityFaces.get(1)![0]!))!;
    const taken = await call("POST", `/api/persons/${other}/name`, { name: "ALICE" });
    expect(taken.status).toBe(409);
    // An HTTP client is pointed at the route that settles it, not at a CLI command.
    expect(taken.body.error).toBe(`"ALICE" is already person ${alice}; merge them with POST /api/persons/${alice}/merge {"sources": [${other}]}`);
    const created = await call("POST", "/api/persons", { name: "alice" });
    expect(created).toEqual({
      status: 409,
      body: { error: `"alice" is already person ${alice}; give them the faces with POST /api/persons/${alice}/assign {"face_ids": [...]}` },
    });
    expect((await call("POST", `/api/persons/${other}/name`, { name: "" })).status).toBe(400);
    // Control characters would reach a terminal through imgd persons list; a new person is refused the same way.
    const spare = (await call("POST", "/api/persons", {})).body.id;
    for (const name of ["x\u0000y", "\u001b[31mred", "bell\u0007"]) {
      const bad = await call("POST", `/api/persons/${spare}/name`, { name });
      expect(bad).toEqual({ status: 400, body: { error: "a person's name cannot hold control characters" } });
      expect((await call("POST", "/api/persons", { name })).status).toBe(400);
    }
    expect((await call("GET", `/api/persons/${spare}`)).body.person.name).toBeNull();
    // Tabs and line breaks are whitespace: collapsed to one space, as runs of spaces are.
    const spaced = await call("POST", `/api/persons/${spare}/name`, { name: "Zoë\t\"Z\"\nO'Brien 👩‍👧" });
    expect(spaced.body.name).toBe("Zoë \"Z\" O'Brien 👩‍👧");
    expect((await call("POST", `/api/persons/${spare}/name`, { name: null })).status).toBe(400);
    const notJson = await call("POST", `/api/persons/${other}/name`, "{oops");
    expect(notJson).toEqual({ status: 400, body: { error: "the body must be JSON" } });
    const badId = await call("GET", "/api/persons/abc");
    expect(badId.status).toBe(400);
    expect(badId.body.error).toMatch(/^id: /);
    expect((await call("GET", "/api/persons/99999")).status).toBe(404);
    expect((await call("GET", "/api/faces")).status).toBe(400);
    expect((await call("GET", "/api/faces?image=99999")).status).toBe(404);
  });

  test("merge, split, assign and unassign move faces; the suggestion pass finds the unassigned face", async () => {
    const bobFaces = identityFaces.get(1)!;
    const carolCluster = (await personOfFace(identityFaces.get(2)![0]!))!;
    const bob = await call("POST", "/api/persons", { name: "Bob" });
    expect(bob.status).toBe(201);
    const bobCluster = (await personOfFace(bobFaces[0]!))!;
    const merged = await call("POST", `/api/persons/${bob.body.id}/merge`, { sources: [bobCluster] });
    expect(merged.body).toMatchObject({ name: "Bob", faces: 6 });
    expect((await call("GET", `/api/persons/${bobCluster}`)).status).toBe(404);
    expect((await call("POST", `/api/persons/${bob.body.id}/merge`, { sources: [] })).status).toBe(400);

    const split = await call("POST", `/api/persons/${bob.body.id}/split`, { face_ids: [bobFaces[5]] });
    expect(split.status).toBe(201);
    expect(split.body.to).toMatchObject({ name: null, faces: 1 });
    const foreign = await call("POST", `/api/persons/${bob.body.id}/split`, { face_ids: [identityFaces.get(2)![0]] });
    expect(foreign.status).toBe(400);
    expect(foreign.body.error).toContain("do not belong");

    const unassigned = await call("POST", "/api/faces/unassign", { face_ids: [bobFaces[5]] });
    expect(unassigned.body.assigned).toBe(1);
    const pass = await call("POST", "/api/faces/suggestions");
    expect(pass.status).toBe(200);
    expect(pass.body).toMatchObject({ suggested: 1, searches: 1, faces: { searched: 1 } });
    expect(pass.body.by_person).toEqual([{ person_id: bob.body.id, name: "Bob", suggested: 1 }]);
    expect(pass.body.comparisons.saved_pct).toBeGreaterThan(0);
    const suggestions = await call("GET", `/api/persons/${bob.body.id}/suggestions`);
    expect(suggestions.body.suggestions.map((s: any) => s.face_id)).toEqual([bobFaces[5]]);
    expect(suggestions.body.suggestions[0].score).toBeGreaterThan(0.38);
    expect(suggestions.body.suggestions[0].image_width).toBe((await call("GET", `/api/images/${imageOfFace.get(bobFaces[5]!)}`)).body.width);
    // offset pages like everywhere else: past the one suggestion, nothing.
    expect((await call("GET", `/api/persons/${bob.body.id}/suggestions?offset=1`)).body.suggestions).toEqual([]);

    const accepted = await call("POST", `/api/persons/${bob.body.id}/assign`, { face_ids: [bobFaces[5]] });
    expect(accepted.status).toBe(200);
    expect(await personOfFace(bobFaces[5]!)).toBe(bob.body.id);
    expect((await call("GET", `/api/persons/${bob.body.id}/suggestions`)).body.suggestions).toEqual([]);
    expect((await call("POST", `/api/persons/${carolCluster}/assign`, { face_ids: [123456] })).status).toBe(404);
    expect((await call("POST", `/api/persons/${carolCluster}/assign`, { face_ids: ["x"] })).status).toBe(400);
  });

  test("GET /api/faces/:id/similar answers from the faces index and follows new faces", async () => {
    const carol = identityFaces.get(2)!;
    const first = await call("GET", `/api/faces/${carol[0]}/similar?k=7`);
    expect(first.status).toBe(200);
    expect(first.body.faces.map((f: any) => f.id).sort((a: number, b: number) => a - b)).toEqual(carol.slice(1));
    expect(first.body.faces[0].similarity).toBeGreaterThanOrEqual(first.body.faces[6].similarity);
    // A face written while the server runs (as ingest would) is found next time.
    const near = facesOf(unitVectors(3, FACE_DIMS, 31), [2], 0.3, 55);
    let added = 0;
    await server.deps.store.writeRows(async (conn) => {
      const rows = await conn.runAndReadAll(
        `INSERT INTO faces (image_id, x0, y0, x1, y1, landmarks, score, embedding)
         VALUES ($1, 1, 1, 9, 9, [0,0,0,0,0,0,0,0,0,0]::FLOAT[10], 0.9, $2) RETURNING id`,
        [imageIds[0]!, loadDuckDB().blobValue(new Uint8Array(near.buffer))],
      );
      added = Number(rows.getRows()[0]![0]);
    });
    const second = await call("GET", `/api/faces/${carol[0]}/similar?k=1`);
    expect(second.body.faces.map((f: any) => f.id)).toEqual([added]);
    expect((await call("GET", "/api/faces/424242/similar")).status).toBe(404);
    expect((await call("GET", `/api/faces/${carol[0]}/similar?k=0`)).status).toBe(400);
  });

  test("DELETE a person: its faces belong to nobody, its name is free, a second DELETE is 404", async () => {
    const zed = await call("POST", "/api/persons", { name: "Zed" });
    const faces = identityFaces.get(0)!;
    await call("POST", `/api/persons/${zed.body.id}/assign`, { face_ids: faces });
    const gone = await call("DELETE", `/api/persons/${zed.body.id}`);
    expect(gone.status).toBe(200);
    expect(gone.body.deleted).toMatchObject({ id: zed.body.id, name: "Zed", faces: faces.length });
    for (const f of faces) expect(await personOfFace(f)).toBeNull();
    expect((await call("GET", `/api/persons/${zed.body.id}`)).status).toBe(404);
    expect((await call("DELETE", `/api/persons/${zed.body.id}`)).status).toBe(404);
    expect((await call("POST", "/api/persons", { name: "Zed" })).status).toBe(201);
  });

  test("rejecting suggestions for an unknown person or an unknown face is 404, as documented", async () => {
    const carol = identityFaces.get(2)!;
    const person = (await personOfFace(carol[0]!))!;
    expect(await call("POST", "/api/persons/424242/reject", { face_ids: [carol[0]] })).toEqual({ status: 404, body: { error: "no person 424242" } });
    expect(await call("POST", `/api/persons/${person}/reject`, { face_ids: [carol[0], 424242] })).toEqual({ status: 404, body: { error: "no face 424242" } });
    expect(await call("POST", `/api/persons/${person}/reject`, { face_ids: [carol[0]] })).toEqual({ status: 200, body: { rejected: 0 } });
  });

  test("the OpenAPI document describes the persons routes", async () => {
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as any;
    for (const path of ["/api/persons", "/api/persons/{id}", "/api/persons/{id}/merge", "/api/faces", "/api/faces/suggestions"]) {
      expect(doc.paths[path]).toBeDefined();
    }
    expect(doc.paths["/api/persons/{id}/name"].post.responses["409"]).toBeDefined();
  });
});
