// Persons against a real catalog.duckdb: clustering into persons, prototypes, auto-assignment at index time,
// the batched suggestion pass and its pre-filter, and the user's edits (name, merge, split, assign).
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { autoAssignFaces } from "../../src/engine/faces/auto-assign.ts";
import { FACES_INDEX_FILE, FacesIndex, similarFaceIds } from "../../src/engine/faces/faces-index.ts";
import { clusterFaces } from "../../src/engine/faces/face-clustering.ts";
import { openPersonsCatalog, type PersonsCatalog } from "../../src/engine/faces/persons-catalog.ts";
import { personModel } from "../../src/engine/faces/persons-prototypes.ts";
import {
  assignFaces,
  createPerson,
  facesOfImage,
  getPerson,
  listPersons,
  mergePersons,
  namePerson,
  resolvePerson,
  splitPerson,
} from "../../src/engine/faces/persons.ts";
import { hasTable, PersonsError, writeThreshold } from "../../src/engine/faces/persons-table.ts";
import { computeSuggestions, personSuggestions, rejectSuggestions } from "../../src/engine/faces/suggestions.ts";
import { Catalog } from "../../src/engine/store/catalog.ts";
import { FACE_DIMS, facesOf, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";

const IDENTITIES = 6;
const PER_IDENTITY = 12;
const identities = unitVectors(IDENTITIES + 2, FACE_DIMS, 7);

let dir: string;
let catalogPath: string;
let db: PersonsCatalog;

/** Faces of identities 0..5, 12 each, spread over images 1..18 (4 faces an image). */
async function seedFaces(): Promise<{ ids: number[]; identityOf: number[] }> {
  const identityOf = Array.from({ length: IDENTITIES * PER_IDENTITY }, (_, i) => i % IDENTITIES);
  const vectors = facesOf(identities, identityOf, 0.8, 11);
  const ids = await insertFaces(
    catalogPath,
    identityOf.map((_, i) => ({ imageId: 1 + Math.floor(i / 4), embedding: row(vectors, i) })),
  );
  return { ids, identityOf };
}

async function personOfFaces(ids: number[]): Promise<(number | null)[]> {
  const rows = await db.read(`SELECT id, person_id FROM faces WHERE id IN (${ids.join(",")})`);
  const by = new Map(rows.map((r) => [Number(r[0]), r[1] === null ? null : Number(r[1])]));
  return ids.map((id) => by.get(id) ?? null);
}

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "imgd-persons-"));
  catalogPath = join(dir, "catalog.duckdb");
  await (await Catalog.open(catalogPath, 4, false)).close();
});

afterEach(() => {
  db?.close();
  rmSync(dir, { recursive: true, force: true });
});

const open = async () => (db = await openPersonsCatalog(dir, { readOnly: false }));

/** Seeded faces clustered into persons, identity 0's person named Alice (its id returned); the catalog is closed again. */
async function clusteredWithAliceNamed() {
  const { ids, identityOf } = await seedFaces();
  await open();
  await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
  const [alice] = await personOfFaces([ids[identityOf.indexOf(0)]!]);
  await db.write((conn) => namePerson(conn, alice!, "Alice"));
  db.close();
  return { ids, identityOf, alice };
}

describe("prototypes", () => {
  test("a person seen in two looks gets a prototype near each look, and a unit centroid", () => {
    const looks = unitVectors(2, FACE_DIMS, 3);
    const identityOf = Array.from({ length: 24 }, (_, i) => i % 2);
    const faces = facesOf(looks, identityOf, 0.5, 5);
    const model = personModel(faces, 24, FACE_DIMS);
    expect(model.prototypes.length).toBe(3); // ceil(24 / 8)
    const cos = (a: Float32Array, b: Float32Array) => a.reduce((s, v, d) => s + v * b[d]!, 0);
    for (const look of [0, 1]) {
      const best = Math.max(...model.prototypes.map((p) => cos(p, row(looks, look))));
      expect(best).toBeGreaterThan(0.85);
    }
    expect(cos(model.centroid, model.centroid)).toBeCloseTo(1, 5);
    // The centroid sits between the looks, further from each than the nearest prototype.
    expect(cos(model.centroid, row(looks, 0))).toBeLessThan(0.8);
  });

  test("a person with a handful of faces has one prototype, its centroid", () => {
    const faces = facesOf(identities, [0, 0, 0], 0.5, 9);
    const model = personModel(faces, 3, FACE_DIMS);
    expect(model.prototypes).toHaveLength(1);
    expect([...model.prototypes[0]!]).toEqual([...model.centroid]);
  });
});

describe("clustering faces into persons", () => {
  test("each identity becomes one unnamed person with prototypes; a second run keeps the same persons", async () => {
    const { ids, identityOf } = await seedFaces();
    await open();
    const stages: string[] = [];
    const report = await db.write((conn) => clusterFaces(conn, { minClusterSize: 4, onProgress: (s) => stages.push(s) }));
    expect(report.faces).toBe(IDENTITIES * PER_IDENTITY);
    expect(report.clusters).toBe(IDENTITIES);
    expect(report.persons.created).toBe(IDENTITIES);
    expect(report.persons.refreshed).toBe(IDENTITIES);
    expect(stages).toContain("read");
    expect(stages).toContain("refresh");
    expect(Object.keys(report.timings)).toEqual(expect.arrayContaining(["read", "write", "refresh"]));

    const persons = await personOfFaces(ids);
    const personOfIdentity = new Map<number, number>();
    persons.forEach((p, i) => {
      expect(p).not.toBeNull();
      const known = personOfIdentity.get(identityOf[i]!);
      if (known === undefined) personOfIdentity.set(identityOf[i]!, p!);
      else expect(p).toBe(known);
    });
    expect(new Set(personOfIdentity.values()).size).toBe(IDENTITIES);
    const { persons: listed } = await listPersons(db.read);
    expect(listed.every((p) => p.name === null && p.faces === PER_IDENTITY && p.prototypes === 2)).toBe(true);
    const withCentroid = await db.read("SELECT count(*) FROM persons WHERE centroid IS NOT NULL");
    expect(Number(withCentroid[0]![0])).toBe(IDENTITIES);

    const again = await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    expect(again.persons.created).toBe(0);
    expect(again.persons.reused).toBe(IDENTITIES);
    expect(again.moved).toBe(0);
    expect(await personOfFaces(ids)).toEqual(persons);
  });

  test("a face the user placed stays where the user put it", async () => {
    const { ids } = await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const [before] = await personOfFaces([ids[0]!]);
    const other = await db.write((conn) => createPerson(conn, "Someone Else"));
    await db.write((conn) => assignFaces(conn, [ids[0]!], other));
    const report = await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    expect(report.moved).toBe(0);
    expect(await personOfFaces([ids[0]!])).toEqual([other]);
    expect(before).not.toBe(other);
    const [[by]] = await db.read(`SELECT assigned_by FROM faces WHERE id = ${ids[0]}`);
    expect(by).toBe("user");
  });

  test("a face the user took out of every person stays out through the next clustering", async () => {
    const { ids } = await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const [person] = await personOfFaces([ids[0]!]);
    expect(person).not.toBeNull();
    await db.write((conn) => assignFaces(conn, [ids[0]!], null));
    const report = await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    expect(await personOfFaces([ids[0]!])).toEqual([null]);
    expect(report.persons.created).toBe(0);
    // Its cluster mates (same identity: ids are dealt round-robin) keep their person.
    expect(await personOfFaces([ids[IDENTITIES]!])).toEqual([person]);
    const [[by]] = await db.read(`SELECT assigned_by FROM faces WHERE id = ${ids[0]}`);
    expect(by).toBe("user");
  });

  test("two unnamed persons the user merged stay one person through the next clustering", async () => {
    const { ids, identityOf } = await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const ofIdentity = (k: number) => ids.filter((_, i) => identityOf[i] === k);
    const [target] = await personOfFaces(ofIdentity(0));
    const [source] = await personOfFaces(ofIdentity(1));
    await db.write((conn) => mergePersons(conn, target!, [source!]));
    const merged = [...ofIdentity(0), ...ofIdentity(1)];
    expect(new Set(await personOfFaces(merged))).toEqual(new Set([target!]));
    const report = await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    expect(report.persons.created).toBe(0);
    expect(report.moved).toBe(0);
    expect(new Set(await personOfFaces(merged))).toEqual(new Set([target!]));
    expect((await getPerson(db.read, target!)).person).toMatchObject({ name: null, faces: 2 * PER_IDENTITY });
  });

  test("new faces that cluster with a named person's faces join that person; noise stays unassigned", async () => {
    const { alice } = await clusteredWithAliceNamed();
    const later = [0, 0, 0, 0, 0, 7];
    const vectors = facesOf(identities, later, 0.8, 321);
    const laterIds = await insertFaces(catalogPath, later.map((_, i) => ({ imageId: 70, embedding: row(vectors, i) })));
    await open();
    const report = await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    expect(report.persons.created).toBe(0);
    expect(report.moved).toBe(5);
    expect(await personOfFaces(laterIds)).toEqual([alice!, alice!, alice!, alice!, alice!, null]);
    expect((await getPerson(db.read, alice!)).person.faces).toBe(PER_IDENTITY + 5);
  });

  test("min samples is bounded: above 100 refused before any work, and a min size above 100 uses 100", async () => {
    await seedFaces();
    await open();
    const before = await db.read("SELECT id, person_id, cluster_id FROM faces ORDER BY id");
    // 5,000 on 15K faces took 65 s and 3 GB: each face's neighbour list is min-samples long.
    await expect(db.write((conn) => clusterFaces(conn, { minClusterSize: 4, minSamples: 5000 }))).rejects.toThrow(
      "min samples must be a whole number from 1 to 100, got 5000",
    );
    expect(await db.read("SELECT id, person_id, cluster_id FROM faces ORDER BY id")).toEqual(before);
    expect((await db.write((conn) => clusterFaces(conn, { minClusterSize: 4, minSamples: 100 }))).minSamples).toBe(100);
    expect((await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }))).minSamples).toBe(4);
    const large = await db.write((conn) => clusterFaces(conn, { minClusterSize: 150 }));
    expect([large.minSamples, large.clusters]).toEqual([100, 0]);
  });

  test("an index without faces says how to get them", async () => {
    await open();
    await expect(db.write((conn) => clusterFaces(conn))).rejects.toThrow(/--faces/);
  });
});

describe("auto-assignment at index time", () => {
  test("new faces join the named person of their nearest prototype; strangers and unnamed clusters get nobody", async () => {
    const { ids, identityOf } = await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const [alice, bob] = await personOfFaces([ids[identityOf.indexOf(0)]!, ids[identityOf.indexOf(1)]!]);
    await db.write((conn) => namePerson(conn, alice!, "Alice"));
    await db.write((conn) => namePerson(conn, bob!, "Bob"));
    db.close();

    // Identity 0 and 1 are named; 2 is an unnamed cluster; 6 was never seen.
    const newIdentity = [0, 1, 2, 6, 0];
    const vectors = facesOf(identities, newIdentity, 0.8, 99);
    const newIds = await insertFaces(catalogPath, newIdentity.map((_, i) => ({ imageId: 40, embedding: row(vectors, i) })));
    await open();
    const faces = newIds.map((id, i) => ({ id, imageId: 40, embedding: row(vectors, i) }));
    const strict = await db.write((conn) => autoAssignFaces(conn, faces, { threshold: 0.99 }));
    expect(strict.assigned).toBe(0);
    const result = await db.write((conn) => autoAssignFaces(conn, faces));
    expect(result.assigned).toBe(3);
    expect(await personOfFaces(newIds)).toEqual([alice!, bob!, null, null, alice!]);
    const rows = await db.read(`SELECT DISTINCT assigned_by FROM faces WHERE id IN (${newIds[0]}, ${newIds[1]})`);
    expect(rows.map((r) => r[0])).toEqual(["auto"]);
    const shown = await facesOfImage(db.read, 40);
    expect(shown.map((f) => f.person)).toEqual(["Alice", "Bob", null, null, "Alice"]);
  });

  test("a named person whose photos are all removed keeps the name but no prototypes, and claims no new face", async () => {
    const { ids, identityOf, alice } = await clusteredWithAliceNamed();
    const imageOf = (i: number) => 1 + Math.floor(i / 4); // as seedFaces spreads them
    const aliceImages = [...new Set(ids.flatMap((_, i) => (identityOf[i] === 0 ? [imageOf(i)] : [])))];
    const catalog = await Catalog.open(catalogPath, 4, false);
    await catalog.removeIds(aliceImages);
    await catalog.close();

    const face = facesOf(identities, [0], 0.8, 77);
    const [newId] = await insertFaces(catalogPath, [{ imageId: 99, embedding: face }]);

    await open();
    const { person } = await getPerson(db.read, alice!);
    expect(person).toMatchObject({ name: "Alice", faces: 0, prototypes: 0 });
    expect(await db.write((conn) => autoAssignFaces(conn, [{ id: newId!, imageId: 99, embedding: face }]))).toEqual({ assigned: 0 });
  });

  test("the configured threshold applies when the caller gives none", async () => {
    const { ids } = await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const [alice] = await personOfFaces([ids[0]!]);
    await db.write((conn) => namePerson(conn, alice!, "Alice"));
    await db.write((conn) => writeThreshold(conn, "assign_threshold", 0.995));
    const face = facesOf(identities, [0], 0.8, 5);
    const result = await db.write((conn) => autoAssignFaces(conn, [{ id: ids[0]!, imageId: 1, embedding: face }]));
    expect(result.assigned).toBe(0);
  });

  test("before any person exists it assigns nothing and creates no tables", async () => {
    const { ids } = await seedFaces();
    await open();
    const face = facesOf(identities, [0], 0.8, 5);
    expect(await db.write((conn) => autoAssignFaces(conn, [{ id: ids[0]!, imageId: 1, embedding: face }]))).toEqual({ assigned: 0 });
    expect(await hasTable(db.read, "persons")).toBe(false);
  });
});

describe("suggestions", () => {
  test("one pass suggests unassigned faces for named persons; the next pass skips what it already checked", async () => {
    const { ids, identityOf, alice } = await clusteredWithAliceNamed();
    // Faces that arrived unassigned (say, indexed before Alice had a name): 3 of Alice, 2 strangers.
    const later = [0, 0, 0, 7, 7];
    const vectors = facesOf(identities, later, 0.8, 123);
    const laterIds = await insertFaces(catalogPath, later.map((_, i) => ({ imageId: 50 + i, embedding: row(vectors, i) })));
    await open();

    const first = await db.write((conn) => computeSuggestions(conn));
    expect(first.persons).toEqual({ total: IDENTITIES, searched: 1, skippedUnnamed: IDENTITIES - 1, skippedNoPrototypes: 0 });
    expect(first.faces.unassigned).toBe(5);
    expect(first.faces.searched).toBe(5);
    expect(first.searches).toBe(1);
    expect(first.suggested).toBe(3);
    expect(first.byPerson).toEqual([{ personId: alice!, name: "Alice", suggested: 3 }]);
    expect(first.comparisons).toEqual({ naive: IDENTITIES * 5, done: 5, savedPct: +((100 * (30 - 5)) / 30).toFixed(1) });
    const listed = await personSuggestions(db.read, alice!);
    expect(listed.map((s) => s.faceId).sort()).toEqual(laterIds.slice(0, 3).sort());
    expect(listed.every((s) => s.score > 0.5)).toBe(true);

    const second = await db.write((conn) => computeSuggestions(conn));
    expect(second.faces).toEqual({ unassigned: 5, searched: 0, skippedPending: 3, skippedChecked: 2 });
    expect(second.comparisons.savedPct).toBe(100);
    expect(second.suggested).toBe(0);

    // "Not Alice" sticks; accepting by assignment removes the face from the suggestions.
    expect(await db.write((conn) => rejectSuggestions(conn, alice!, [laterIds[0]!]))).toBe(1);
    await db.write((conn) => assignFaces(conn, [laterIds[1]!], alice!));
    const left = await personSuggestions(db.read, alice!);
    expect(left.map((s) => s.faceId)).toEqual([laterIds[2]!]);
    // A new generation (a person named) re-checks 'no-match' faces but never re-suggests a rejected pair.
    const [bob] = await personOfFaces([ids[identityOf.indexOf(1)]!]);
    await db.write((conn) => namePerson(conn, bob!, "Bob"));
    const third = await db.write((conn) => computeSuggestions(conn));
    expect(third.faces.searched).toBe(3); // the rejected face and the two strangers
    expect(third.suggested).toBe(0);
    expect((await personSuggestions(db.read, alice!)).map((s) => s.faceId)).toEqual([laterIds[2]!]);
  });

  test("a face rejected for a person before any pass suggested it is never suggested for that person", async () => {
    const { alice } = await clusteredWithAliceNamed();
    const later = [0, 0, 0];
    const vectors = facesOf(identities, later, 0.8, 321);
    const laterIds = await insertFaces(catalogPath, later.map((_, i) => ({ imageId: 60 + i, embedding: row(vectors, i) })));
    await open();
    expect(await db.write((conn) => rejectSuggestions(conn, alice!, [laterIds[0]!]))).toBe(1);
    // Said twice, it is one rejection.
    expect(await db.write((conn) => rejectSuggestions(conn, alice!, [laterIds[0]!]))).toBe(0);
    const pass = await db.write((conn) => computeSuggestions(conn));
    expect(pass.suggested).toBe(2);
    expect((await personSuggestions(db.read, alice!)).map((s) => s.faceId).sort()).toEqual(laterIds.slice(1).sort());
  });
});

describe("editing persons", () => {
  test("names are unique ignoring case, and a person is found by id or name", async () => {
    await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const { persons } = await listPersons(db.read);
    await db.write((conn) => namePerson(conn, persons[0]!.id, "  Alice   Smith "));
    expect(await resolvePerson(db.read, "alice smith")).toBe(persons[0]!.id);
    expect(await resolvePerson(db.read, String(persons[1]!.id))).toBe(persons[1]!.id);
    const conflict = db.write((conn) => namePerson(conn, persons[1]!.id, "ALICE SMITH"));
    await expect(conflict).rejects.toThrow(PersonsError);
    await expect(conflict).rejects.toThrow(/already person/);
    await expect(db.write((conn) => namePerson(conn, persons[1]!.id, "  "))).rejects.toThrow(/empty/);
    await expect(resolvePerson(db.read, "Nobody")).rejects.toThrow(/no person "Nobody"/);
  });

  test("a name is found and kept unique however its spaces and accents were typed (composed or decomposed)", async () => {
    await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const { persons } = await listPersons(db.read);
    const composed = "Zo\u00eb  Caf\u00e9";
    const decomposed = "zoe\u0308 cafe\u0301";
    await db.write((conn) => namePerson(conn, persons[0]!.id, composed));
    expect((await getPerson(db.read, persons[0]!.id)).person.name).toBe("Zo\u00eb Caf\u00e9");
    expect(await resolvePerson(db.read, decomposed)).toBe(persons[0]!.id);
    expect(await resolvePerson(db.read, "Zo\u00eb   Caf\u00e9")).toBe(persons[0]!.id);
    await expect(db.write((conn) => namePerson(conn, persons[1]!.id, decomposed))).rejects.toThrow(/already person/);
    // A name stored decomposed (before names were composed on the way in) is found by its composed spelling too.
    await db.write((conn) => conn.run("UPDATE persons SET name = $1 WHERE id = $2", ["Jos\u0065\u0301", persons[1]!.id]));
    expect(await resolvePerson(db.read, "jos\u00e9")).toBe(persons[1]!.id);
  });

  test("merge moves every face and takes the source's name; split moves chosen faces to a new person", async () => {
    await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const { persons } = await listPersons(db.read);
    const [a, b] = [persons[0]!.id, persons[1]!.id];
    await db.write((conn) => namePerson(conn, b, "Bob"));
    const merged = await db.write((conn) => mergePersons(conn, a, [b]));
    expect(merged).toMatchObject({ id: a, name: "Bob", faces: 2 * PER_IDENTITY });
    await expect(getPerson(db.read, b)).rejects.toThrow(/no person/);

    const { faces } = await getPerson(db.read, a);
    const moving = faces.slice(0, 5).map((f) => f.id);
    const { from, to } = await db.write((conn) => splitPerson(conn, a, moving, "Carol"));
    expect(from.faces).toBe(2 * PER_IDENTITY - 5);
    expect(to).toMatchObject({ name: "Carol", faces: 5, prototypes: 1 });
    await expect(db.write((conn) => splitPerson(conn, a, moving))).rejects.toThrow(/do not belong/);

    await db.write((conn) => assignFaces(conn, [moving[0]!], null));
    expect(await personOfFaces([moving[0]!])).toEqual([null]);
    await expect(db.write((conn) => assignFaces(conn, [999_999], a))).rejects.toThrow(/no face 999999/);
  });

  test("an unnamed person the user takes every face from is deleted, a named one keeps its name; a split of all is refused", async () => {
    await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const [a, b, c] = (await listPersons(db.read)).persons.map((p) => p.id);
    await db.write((conn) => namePerson(conn, b!, "Bob"));
    const facesOf = async (id: number) => (await getPerson(db.read, id)).faces.map((f) => f.id);
    const ofA = await facesOf(a!);
    await expect(db.write((conn) => splitPerson(conn, a!, ofA))).rejects.toThrow(`those are all of person ${a}'s faces`);
    expect(await facesOf(a!)).toEqual(ofA);

    await db.write((conn) => assignFaces(conn, ofA.slice(1), b!));
    expect((await getPerson(db.read, a!)).person.faces).toBe(1);
    await db.write((conn) => assignFaces(conn, ofA.slice(0, 1), null));
    await expect(getPerson(db.read, a!)).rejects.toThrow(`no person ${a}`);
    expect((await listPersons(db.read)).persons.every((p) => p.faces > 0)).toBe(true);

    // Named, it stays with no faces, as it does when its photos leave the index.
    const ofB = await facesOf(b!);
    await db.write((conn) => assignFaces(conn, ofB, c!));
    expect((await getPerson(db.read, b!)).person).toMatchObject({ name: "Bob", faces: 0 });
  });

  test("faces of another face model (another embedding size) are refused by assign and merge, and nothing changes", async () => {
    await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const [a, b] = (await listPersons(db.read)).persons.map((p) => p.id);
    db.close();
    // Part of the index analysed with another embedder: 128-d faces beside the 512-d ones, one already in person b.
    const small = unitVectors(2, 128, 5);
    const [loose, placed] = await insertFaces(catalogPath, [
      { imageId: 30, embedding: row(small, 0, 128) },
      { imageId: 31, embedding: row(small, 1, 128), personId: b!, assignedBy: "user" },
    ]);
    await open();
    const before = await db.read("SELECT id, person_id FROM faces ORDER BY id");
    const centroids = await db.read("SELECT id, centroid FROM persons ORDER BY id");

    const assign = db.write((conn) => assignFaces(conn, [loose!], a!));
    await expect(assign).rejects.toThrow(new RegExp(`face ${loose} has a 128-d embedding; person ${a}'s face \\d+ has a 512-d one`));
    await expect(assign).rejects.toBeInstanceOf(PersonsError);
    await expect(db.write((conn) => mergePersons(conn, a!, [b!]))).rejects.toThrow(/-d embedding.*another face model/);
    expect(await db.read("SELECT id, person_id FROM faces ORDER BY id")).toEqual(before);
    expect(await db.read("SELECT id, centroid FROM persons ORDER BY id")).toEqual(centroids);
    expect(await personOfFaces([loose!, placed!])).toEqual([null, b!]);
  });

  test("a failed edit leaves the catalog as it was", async () => {
    await seedFaces();
    await open();
    await db.write((conn) => clusterFaces(conn, { minClusterSize: 4 }));
    const { persons } = await listPersons(db.read);
    const [a, b, c] = persons.map((p) => p.id);
    await db.write((conn) => namePerson(conn, b!, "Bob"));
    await db.write((conn) => namePerson(conn, c!, "Carl"));
    const before = await db.read("SELECT id, person_id FROM faces ORDER BY id");
    await expect(db.write((conn) => mergePersons(conn, a!, [b!, c!]))).rejects.toThrow(/name the target first/);
    expect(await db.read("SELECT id, person_id FROM faces ORDER BY id")).toEqual(before);
    expect((await listPersons(db.read)).total).toBe(IDENTITIES);
  });
});

describe("the faces index", () => {
  test("finds a face's own identity first, and is created, kept, repaired and rebuilt as the faces table changes", async () => {
    const { ids, identityOf } = await seedFaces();
    await open();
    const created = await FacesIndex.open(db.read, dir);
    expect(created.recovery).toBe("created");
    expect(created.index.size).toBe(ids.length);
    const similar = await similarFaceIds(db.read, created.index, ids[0]!, PER_IDENTITY - 1);
    expect(similar).toHaveLength(PER_IDENTITY - 1);
    expect(similar.map((m) => identityOf[ids.indexOf(m.faceId)])).toEqual(Array(PER_IDENTITY - 1).fill(identityOf[0]));
    expect(similar.some((m) => m.faceId === ids[0])).toBe(false);
    expect((await FacesIndex.open(db.read, dir)).recovery).toBe("none");

    // A face removed and two added: the saved file is repaired by key difference.
    await db.write(async (conn) => void (await conn.run(`DELETE FROM faces WHERE id = ${ids[1]}`)));
    db.close();
    const added = await insertFaces(catalogPath, [0, 1].map((i) => ({ imageId: 60, embedding: facesOf(identities, [i], 0.8, 77 + i) })));
    await open();
    const repaired = await FacesIndex.open(db.read, dir);
    expect(repaired.recovery).toBe("repaired");
    expect(repaired.index.size).toBe(ids.length + 1);
    const near = await similarFaceIds(db.read, repaired.index, added[0]!, 3);
    expect(near.map((m) => identityOf[ids.indexOf(m.faceId)])).toEqual([0, 0, 0]);
    expect(near.some((m) => m.faceId === ids[1])).toBe(false);
    // An index kept in memory catches up the same way, and stays put while nothing changes.
    expect(await repaired.index.current(db.read, dir)).toBe(repaired.index);

    writeFileSync(join(dir, FACES_INDEX_FILE), "not an index");
    const rebuilt = await FacesIndex.open(db.read, dir);
    expect(rebuilt.recovery).toBe("rebuilt");
    expect(rebuilt.index.size).toBe(ids.length + 1);
    await expect(similarFaceIds(db.read, rebuilt.index, 999_999, 3)).rejects.toThrow(/no face 999999/);
  });

  test("300 faces of one photo copied into 300 folders hide no other face, and survive reopening and removal", async () => {
    const { ids } = await seedFaces();
    const copy = facesOf(identities, [IDENTITIES], 0.8, 5);
    const copies = await insertFaces(catalogPath, Array.from({ length: 300 }, (_, i) => ({ imageId: 100 + i, embedding: copy })));
    const others = unitVectors(1500, FACE_DIMS, 19);
    const distinct = await insertFaces(catalogPath, Array.from({ length: 1500 }, (_, i) => ({ imageId: 500 + i, embedding: row(others, i) })));
    await open();
    const { index } = await FacesIndex.open(db.read, dir);
    expect(index.size).toBe(ids.length + 300 + 1500);
    const found = index.search(others, 1500, 2).filter((matches, i) => matches[0]?.faceId === distinct[i]).length;
    expect(found).toBe(1500);
    const alike = await similarFaceIds(db.read, index, copies[0]!, 299);
    expect(alike.map((m) => m.faceId).sort((a, b) => a - b)).toEqual(copies.slice(1));

    await db.write(async (conn) => void (await conn.run(`DELETE FROM faces WHERE id IN (${copies[0]}, ${copies[1]})`)));
    const reopened = await FacesIndex.open(db.read, dir);
    expect(reopened.recovery).toBe("repaired");
    expect(reopened.index.size).toBe(ids.length + 298 + 1500);
    expect((await similarFaceIds(db.read, reopened.index, copies[2]!, 400)).filter((m) => copies.includes(m.faceId))).toHaveLength(297);
    expect((await FacesIndex.open(db.read, dir)).recovery).toBe("none");
  }, 60_000);
});
