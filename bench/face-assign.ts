// Auto-assignment of new faces to named persons (the figure: 2,000 new faces against 500 persons, total ms),
// with one search per face as the same-run baseline; the refresh of all persons' prototypes in one pass; and the
// suggestion pass with its pre-filter, against one search job per person (the old pipeline's shape).
//
//   bun bench/face-assign.ts [--persons 500] [--new 2000] [--faces-per-person 24] [--runs 5]
//
// Synthetic 512-d embeddings (test/fixtures/synthetic-faces.ts): each person is a random unit vector, each face that
// vector plus noise (same-person cosine ≈ 0.6). Of the new faces 3 in 4 are of known persons, 1 in 4 strangers.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { autoAssignFaces } from "../src/engine/faces/auto-assign.ts";
import { namedPrototypes, nearestPersons } from "../src/engine/faces/persons-match.ts";
import { openPersonsCatalog } from "../src/engine/faces/persons-catalog.ts";
import { refreshPersons } from "../src/engine/faces/persons-prototypes.ts";
import { ensurePersonsTables } from "../src/engine/faces/persons-table.ts";
import { computeSuggestions } from "../src/engine/faces/suggestions.ts";
import { loadUSearch } from "../src/engine/native.ts";
import { Catalog } from "../src/engine/store/catalog.ts";
import { FACE_DIMS, facesOf, insertFaces, row, unitVectors } from "../test/fixtures/synthetic-faces.ts";
import { flag, latencySummary, loadNote } from "./fixtures.ts";

const PERSONS = Number(flag("--persons", "500"));
const NEW = Number(flag("--new", "2000"));
const PER_PERSON = Number(flag("--faces-per-person", "24"));
const RUNS = Number(flag("--runs", "5"));
/** Thrown to roll a write transaction back, so every run starts from the same unassigned faces. */
const ROLLBACK = new Error("rollback");

const dir = mkdtempSync(join(tmpdir(), "imgd-bench-faces-"));
try {
  await (await Catalog.open(join(dir, "catalog.duckdb"), 4, false)).close();
  const identities = unitVectors(PERSONS + NEW, FACE_DIMS, 1);
  const t0 = performance.now();
  // Known faces: PER_PERSON per person, assigned by the user.
  const knownOf = Array.from({ length: PERSONS * PER_PERSON }, (_, i) => i % PERSONS);
  const known = facesOf(identities, knownOf, 0.8, 2);
  // Faces first: the persons tables are only created on an index that has a faces table.
  await insertFaces(join(dir, "catalog.duckdb"), knownOf.map((p, i) => ({ imageId: 1 + Math.floor(i / 4), embedding: row(known, i), personId: p + 1, assignedBy: "user" })));
  const db0 = await openPersonsCatalog(dir, { readOnly: false });
  await db0.write(async (conn) => {
    await ensurePersonsTables(conn);
    await conn.run(`INSERT INTO persons (id, name) SELECT i + 1, 'person ' || (i + 1) FROM range(${PERSONS}) t(i)`);
  });
  db0.close();
  // New faces: 3 of 4 of known persons, the rest strangers.
  const newOf = Array.from({ length: NEW }, (_, i) => (i % 4 === 3 ? PERSONS + i : (i * 7) % PERSONS));
  const fresh = facesOf(identities, newOf, 0.8, 3);
  const freshIds = await insertFaces(join(dir, "catalog.duckdb"), newOf.map((_, i) => ({ imageId: 100_000 + Math.floor(i / 4), embedding: row(fresh, i) })));
  const setupMs = performance.now() - t0;

  const db = await openPersonsCatalog(dir, { readOnly: false });
  const all = Array.from({ length: PERSONS }, (_, i) => i + 1);
  const refresh = await timeIt(RUNS, () => db.write((conn) => refreshPersons(conn, all)));
  const set = await namedPrototypes(db.read);
  const faces = freshIds.map((id, i) => ({ id, imageId: 100_000 + Math.floor(i / 4), embedding: row(fresh, i) }));

  // Auto-assignment as at index time: inside a write transaction, rolled back so every run starts unassigned.
  let assigned = 0;
  const batched = await timeIt(RUNS, async () => {
    await db.write(async (conn) => {
      assigned = (await autoAssignFaces(conn, faces)).assigned;
      throw ROLLBACK;
    }).catch(rethrowUnlessRollback);
  });
  let correct = 0;
  await db.write(async (conn) => {
    await autoAssignFaces(conn, faces);
    const rows = (await conn.runAndReadAll(`SELECT person_id FROM faces WHERE id >= ${freshIds[0]} ORDER BY id`)).getRows();
    correct = rows.filter((r, i) => (r[0] === null ? null : Number(r[0])) === (newOf[i]! < PERSONS ? newOf[i]! + 1 : null)).length;
    throw ROLLBACK;
  }).catch(rethrowUnlessRollback);
  // Baseline: one search per face against the same prototypes (what "batched" replaces).
  const { exactSearch, MetricKind } = loadUSearch();
  const perFace = await timeIt(Math.min(RUNS, 2), () => {
    for (let i = 0; i < NEW; i++) exactSearch(set.vectors, row(fresh, i), FACE_DIMS, 1, MetricKind.IP, 0);
  });
  // The matrix product alone, to separate search from reading prototypes and the UPDATE.
  const searchOnly = await timeIt(RUNS, () => nearestPersons(fresh, NEW, set, 1));

  // Suggestions: the new faces unassigned; a quarter of the persons unnamed, some named persons without faces.
  await db.write(async (conn) => {
    await conn.run(`UPDATE persons SET name = NULL WHERE id % 4 = 0`);
    await conn.run(`INSERT INTO persons (id, name) SELECT ${PERSONS} + i + 1, 'no faces ' || i FROM range(${Math.ceil(PERSONS / 10)}) t(i)`);
    await conn.run("UPDATE persons_settings SET value = value + 1 WHERE key = 'generation'");
  });
  const first = await db.write((conn) => computeSuggestions(conn));
  const second = await db.write((conn) => computeSuggestions(conn));
  // Baseline: the old pipeline's shape, one search job per person over every unassigned face.
  const perPerson = await timeIt(1, () => {
    const byPerson = new Map<number, number[]>();
    Array.from(set.personOf).forEach((p, j) => byPerson.set(p, [...(byPerson.get(p) ?? []), j]));
    for (const rows of byPerson.values()) {
      const protos = new Float32Array(rows.length * FACE_DIMS);
      rows.forEach((r, j) => protos.set(set.vectors.subarray(r * FACE_DIMS, (r + 1) * FACE_DIMS), j * FACE_DIMS));
      exactSearch(protos, fresh, FACE_DIMS, 1, MetricKind.IP, 0);
    }
  });
  db.close();

  const p50 = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`face assignment: ${NEW} new faces vs ${PERSONS} named persons (${set.vectors.length / FACE_DIMS} prototypes), ${PER_PERSON} faces a person; ${loadNote()}`);
  console.log(`  setup (synthetic catalog) ${setupMs.toFixed(0)} ms`);
  console.log(`  auto-assign, batched, total     ${latencySummary(batched)}   -> ${assigned} assigned, ${correct}/${NEW} correct`);
  console.log(`    of which the batched search   ${latencySummary(searchOnly)}`);
  console.log(`  baseline: one search per face   ${latencySummary(perFace)}   ratio ${(p50(perFace) / p50(batched)).toFixed(1)}x`);
  console.log(`  refresh ${PERSONS} persons in one pass ${latencySummary(refresh)}`);
  console.log(`suggestion pass: ${first.persons.searched} of ${first.persons.total} persons searched (${first.persons.skippedUnnamed} unnamed, ${first.persons.skippedNoPrototypes} without prototypes skipped), ${first.faces.searched} faces, ${first.searches} batched search(es)`);
  console.log(`  first pass  ${first.ms} ms, ${first.suggested} suggested; comparisons ${first.comparisons.done} vs ${first.comparisons.naive} naive (pre-filter saved ${first.comparisons.savedPct}%)`);
  console.log(`  second pass ${second.ms} ms, ${second.faces.searched} faces searched (${second.faces.skippedPending} pending + ${second.faces.skippedChecked} checked skipped; saved ${second.comparisons.savedPct}%)`);
  console.log(`  baseline: one search per person over all ${NEW} faces (search only, no per-job overhead) ${perPerson[0]!.toFixed(1)} ms over ${set.persons} searches`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function timeIt(runs: number, work: () => unknown): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    await work();
    out.push(performance.now() - t);
  }
  return out;
}

function rethrowUnlessRollback(e: unknown): void {
  if (e !== ROLLBACK) throw e;
}
