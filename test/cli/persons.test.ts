// `imgd faces` and `imgd persons` through the real CLI, on an index built by `imgd index` with test-clip whose faces
// table holds synthetic 512-d embeddings of known identities (no pretrained face model exists on this machine).
import { beforeAll, describe, expect, test } from "bun:test";
import { existsSync, readFileSync, renameSync } from "node:fs";
import { join } from "node:path";
import { loadDuckDB } from "../../src/engine/native.ts";
import { FACE_DIMS, facesOf, insertFaces, row, unitVectors } from "../fixtures/synthetic-faces.ts";
import { copyPhotos, imgd, imgdJson, tempDir } from "./cli-harness.ts";

describe("imgd faces / imgd persons", () => {
  let dir: string;
  let index: string;
  let catalog: string;
  let imageIds: number[];
  /** identity -> face ids */
  const facesOfIdentity = new Map<number, number[]>();
  const imageOfFace = new Map<number, number>();
  const identities = unitVectors(4, FACE_DIMS, 21);

  beforeAll(async () => {
    dir = tempDir("persons");
    copyPhotos(["messi5.jpg", "astronaut.png", "chelsea.png", "fruits.jpg"], join(dir, "photos"));
    index = join(dir, "index");
    const r = await imgd(["index", join(dir, "photos"), "--index", index, "--model", "test-clip"]);
    expect(r.code).toBe(0);
    catalog = join(index, "catalog.duckdb");
    const instance = await loadDuckDB().DuckDBInstance.create(catalog);
    const conn = await instance.connect();
    imageIds = (await conn.runAndReadAll("SELECT id FROM images ORDER BY path")).getRows().map((r) => Number(r[0]));
    conn.closeSync();
    instance.closeSync();
    // Three identities, 8 faces each, spread over the four photos.
    const identityOf = Array.from({ length: 24 }, (_, i) => i % 3);
    const vectors = facesOf(identities, identityOf, 0.8, 5);
    const ids = await insertFaces(catalog, identityOf.map((_, i) => ({ imageId: imageIds[i % 4]!, embedding: row(vectors, i) })));
    ids.forEach((id, i) => {
      facesOfIdentity.set(identityOf[i]!, [...(facesOfIdentity.get(identityOf[i]!) ?? []), id]);
      imageOfFace.set(id, imageIds[i % 4]!);
    });
  }, 120_000);

  test("faces cluster makes one unnamed person per identity, tagging every log line with the job id", async () => {
    const r = await imgd(["faces", "cluster", "--index", index, "--min-size", "4"]);
    expect(r.code).toBe(0);
    const job = /\[faces cluster ([0-9a-f]{8})\]/.exec(r.stdout)?.[1];
    expect(job).toBeDefined();
    const lines = [...r.stdout.trim().split("\n"), ...r.stderr.trim().split("\n")];
    for (const line of lines) expect(line.startsWith(`[faces cluster ${job}]`)).toBe(true);
    expect(r.stdout).toContain("24 faces -> 3 clusters");
    expect(r.stderr).toMatch(/ refresh 100%/);
    const log = readFileSync(join(index, "jobs.jsonl"), "utf8").trim().split("\n").map((l) => JSON.parse(l));
    const record = log.find((l) => l.id === job);
    expect(record).toMatchObject({ job: "faces-cluster", faces: 24, clusters: 3 });
    expect(Object.keys(record.timings)).toEqual(expect.arrayContaining(["read", "write", "refresh"]));

    const listed = await imgdJson(["persons", "list", "--index", index]);
    expect(listed.total).toBe(3);
    expect(listed.persons.map((p: any) => [p.name, p.faces])).toEqual([[null, 8], [null, 8], [null, 8]]);
  });

  test("faces list of an image the index does not hold says so and fails, rather than 'no faces'", async () => {
    const r = await imgd(["faces", "list", "--image", "999999", "--index", index]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("no image 999999");
  });

  test("persons name, show and faces list agree on who is where", async () => {
    const face = facesOfIdentity.get(0)![0]!;
    const byImage = await imgdJson(["faces", "list", "--image", String(imageOfFace.get(face)), "--index", index]);
    const personId = byImage.faces.find((f: any) => f.id === face).personId;
    const named = await imgdJson(["persons", "name", String(personId), "Alice", "--index", index]);
    expect(named).toMatchObject({ id: personId, name: "Alice", faces: 8 });
    const shown = await imgdJson(["persons", "show", "alice", "--index", index]);
    expect(shown.faces.map((f: any) => f.id).sort((a: number, b: number) => a - b)).toEqual(facesOfIdentity.get(0));
    const text = await imgd(["persons", "list", "--index", index]);
    expect(text.stdout).toMatch(new RegExp(`^\\s*${personId}  Alice  8 faces in \\d images, 1 prototype$`, "m"));
  });

  test("assign --to a new name creates that person; merge and split move faces; suggest reports its pre-filter", async () => {
    const bobFaces = facesOfIdentity.get(1)!;
    const assigned = await imgdJson(["persons", "assign", ...bobFaces.slice(0, 2).map(String), "--to", "Bob", "--index", index]);
    expect(assigned.assigned).toBe(2);
    const bob = await imgdJson(["persons", "show", "Bob", "--index", index]);
    expect(bob.person.faces).toBe(2);
    // Bob's other six faces are still in their unnamed cluster: merge it into Bob.
    const rest = await imgdJson(["faces", "list", "--image", String(imageOfFace.get(bobFaces[2]!)), "--index", index]);
    const cluster = rest.faces.find((f: any) => f.id === bobFaces[2]).personId;
    const merged = await imgdJson(["persons", "merge", "Bob", String(cluster), "--index", index]);
    expect(merged).toMatchObject({ name: "Bob", faces: 8 });
    const split = await imgdJson(["persons", "split", "Bob", String(bobFaces[7]), "--index", index]);
    expect(split.to).toMatchObject({ name: null, faces: 1 });
    const none = await imgdJson(["persons", "assign", String(split.to.coverFaceId), "--none", "--index", index]);
    expect(none.assigned).toBe(1);

    const suggest = await imgdJson(["faces", "suggest", "--index", index]);
    expect(suggest.faces.searched).toBe(1);
    expect(suggest.suggested).toBe(1);
    expect(suggest.byPerson[0]).toMatchObject({ name: "Bob", suggested: 1 });
    const again = await imgd(["faces", "suggest", "--index", index]);
    expect(again.stdout).toContain("pre-filter: 0 face-person comparisons");
    const pending = await imgdJson(["persons", "suggestions", "Bob", "--index", index]);
    expect(pending.suggestions.map((s: any) => s.faceId)).toEqual([bobFaces[7]]);
  });

  test("mistakes get a reason and change nothing", async () => {
    const before = await imgdJson(["persons", "list", "--index", index]);
    const taken = await imgd(["persons", "name", "Bob", "ALICE", "--index", index]);
    expect(taken.code).toBe(1);
    expect(taken.stderr).toContain('"ALICE" is already person');
    const unknown = await imgd(["persons", "show", "Zed", "--index", index]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('no person "Zed"');
    const both = await imgd(["persons", "assign", "1", "--to", "Bob", "--none", "--index", index]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain("exactly one of --to PERSON and --none");
    const badThreshold = await imgd(["faces", "settings", "--assign-threshold", "2", "--index", index]);
    expect(badThreshold.code).toBe(2);
    // min-samples near the number of faces made clustering take minutes and gigabytes (5000 on 15K faces: 65 s, 3 GB).
    const dense = await imgd(["faces", "cluster", "--min-samples", "5000", "--index", index]);
    expect(dense.code).toBe(2);
    expect(dense.stderr).toContain("--min-samples takes at most 100, got 5000: each face keeps that many neighbours");
    const noIndex = await imgd(["persons", "list", "--index", join(dir, "nowhere")]);
    expect(noIndex.code).toBe(1);
    expect(noIndex.stderr).toContain("no index at");
    expect(await imgdJson(["persons", "list", "--index", index])).toEqual(before);
  });

  test("faces similar lists the same identity's faces first, from a faces index it keeps beside the catalog", async () => {
    const alice = facesOfIdentity.get(0)!;
    const out = await imgdJson(["faces", "similar", String(alice[0]), "-k", "7", "--index", index]);
    expect(out.faces.map((f: any) => f.id).sort((a: number, b: number) => a - b)).toEqual(alice.slice(1));
    expect(out.faces.every((f: any) => f.similarity > 0.4)).toBe(true);
    expect(existsSync(join(index, "faces.usearch"))).toBe(true);
    const missing = await imgd(["faces", "similar", "424242", "--index", index]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("no face 424242");
  });

  test("persons delete frees a person's faces for the next clustering, which groups them again", async () => {
    const carol = facesOfIdentity.get(2)!;
    await imgdJson(["persons", "assign", ...carol.map(String), "--to", "Carol", "--index", index]);
    const gone = await imgdJson(["persons", "delete", "Carol", "--index", index]);
    expect(gone.deleted).toMatchObject({ name: "Carol", faces: carol.length });
    const missing = await imgd(["persons", "show", "Carol", "--index", index]);
    expect(missing.code).toBe(1);
    // Assigned by the user, they were out of clustering's reach; deleted, they are a cluster of their own again.
    await imgdJson(["faces", "cluster", "--index", index]);
    const image = imageOfFace.get(carol[0]!)!;
    const listed = await imgdJson(["faces", "list", "--image", String(image), "--index", index]);
    const person = listed.faces.find((f: any) => f.id === carol[0]).personId;
    expect(person).not.toBeNull();
    const shown = await imgdJson(["persons", "show", String(person), "--index", index]);
    expect(shown.person).toMatchObject({ name: null, faces: carol.length });
  });

  test("faces settings stores the thresholds the index uses", async () => {
    const set = await imgdJson(["faces", "settings", "--assign-threshold", "0.6", "--index", index]);
    expect(set).toEqual({ assign_threshold: 0.6, suggest_threshold: 0.38 });
    expect(await imgdJson(["faces", "settings", "--index", index])).toEqual(set);
  });
});

describe("imgd faces list and persons show keep one line per face", () => {
  test("a photo whose name holds a newline is printed quoted, as imgd query prints it", async () => {
    const dir = tempDir("persons-odd-name");
    copyPhotos(["messi5.jpg"], join(dir, "photos"));
    const odd = join(dir, "photos", "messi\nthe second.jpg");
    renameSync(join(dir, "photos", "messi5.jpg"), odd);
    const index = join(dir, "index");
    expect((await imgd(["index", join(dir, "photos"), "--index", index, "--model", "test-clip"])).code).toBe(0);
    const instance = await loadDuckDB().DuckDBInstance.create(join(index, "catalog.duckdb"));
    const conn = await instance.connect();
    const imageId = Number((await conn.runAndReadAll("SELECT id FROM images")).getRows()[0]![0]);
    conn.closeSync();
    instance.closeSync();
    const identityOf = [0, 0, 0, 0, 1, 1, 1, 1];
    const vectors = facesOf(unitVectors(2, FACE_DIMS, 9), identityOf, 0.5, 4);
    await insertFaces(join(index, "catalog.duckdb"), identityOf.map((_, i) => ({ imageId, embedding: row(vectors, i) })));
    expect((await imgd(["faces", "cluster", "--index", index, "--min-size", "3"])).code).toBe(0);
    const [person] = (await imgdJson(["persons", "list", "--index", index])).persons;
    expect(person.faces).toBe(4);
    for (const [args, faces] of [[["faces", "list", "--image", String(imageId)], 8], [["persons", "show", String(person.id)], 4]] as const) {
      const r = await imgd([...args, "--index", index]);
      expect(r.code).toBe(0);
      const faceLines = r.stdout.trimEnd().split("\n").filter((l) => l.startsWith("  face "));
      expect(faceLines.length).toBe(faces);
      for (const line of faceLines) expect(line.endsWith(`  ${JSON.stringify(odd)}`)).toBe(true);
    }
  }, 60_000);
});

describe("imgd persons list with no persons says why", () => {
  test("before any clustering, after one that grouped nothing, and for --named / --unnamed", async () => {
    const dir = tempDir("no-persons");
    copyPhotos(["messi5.jpg"], join(dir, "photos"));
    const index = join(dir, "index");
    expect((await imgd(["index", join(dir, "photos"), "--index", index, "--model", "test-clip"])).code).toBe(0);
    const list = async (...flags: string[]) => (await imgd(["persons", "list", "--index", index, ...flags])).stdout.trim();
    expect(await list()).toBe("no persons yet: run imgd faces cluster");

    const instance = await loadDuckDB().DuckDBInstance.create(join(index, "catalog.duckdb"));
    const conn = await instance.connect();
    const imageId = Number((await conn.runAndReadAll("SELECT id FROM images")).getRows()[0]![0]);
    conn.closeSync();
    instance.closeSync();
    const vectors = facesOf(unitVectors(3, FACE_DIMS, 5), [0, 1, 2], 0.8, 3);
    await insertFaces(join(index, "catalog.duckdb"), [0, 1, 2].map((i) => ({ imageId, embedding: row(vectors, i) })));
    const clustered = await imgd(["faces", "cluster", "--index", index, "--min-size", "3"]);
    expect(clustered.stdout).toContain("3 faces -> 0 clusters, 3 unclustered (exact HDBSCAN, min size 3, min samples 3)");
    // A min size above 100 is not also taken as min samples, which is capped, and the run says so.
    const large = await imgd(["faces", "cluster", "--index", index, "--min-size", "150"]);
    expect(large.code).toBe(0);
    expect(large.stderr).toMatch(/\] warning: min samples 100 \(the most\), not the min size 150 it defaults to$/m);
    expect(large.stdout).toContain("min size 150, min samples 100)");
    expect(await list()).toBe("no persons: imgd faces cluster put none of the faces in a group (a smaller --min-size groups more)");
    expect(await list("--named")).toBe("no named persons");
    expect(await list("--unnamed")).toBe("no unnamed persons");
  }, 60_000);
});
