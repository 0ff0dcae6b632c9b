import { randomUUID } from "node:crypto";
import { resolve } from "node:path";
import { clusterFaces, MAX_MIN_SAMPLES } from "../../engine/faces/face-clustering.ts";
import { openPersonsCatalog } from "../../engine/faces/persons-catalog.ts";
import { FacesIndex, similarFaceIds } from "../../engine/faces/faces-index.ts";
import { facesByIds, facesOfImage } from "../../engine/faces/persons.ts";
import { ensurePersonsTables, readSettings, writeThreshold } from "../../engine/faces/persons-table.ts";
import { computeSuggestions } from "../../engine/faces/suggestions.ts";
import { formatDuration } from "../../engine/progress.ts";
import { appendJobLog } from "../../engine/store/job-log.ts";
import { DEFAULT_INDEX, intFlag, parse } from "../args.ts";
import { UsageError } from "../usage.ts";
import { formatFace, runPersonsWork } from "./persons-command.ts";

/** `imgd faces cluster|suggest|list|similar|settings` */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    index: { type: "string" },
    json: { type: "boolean" },
    "min-size": { type: "string" },
    "min-samples": { type: "string" },
    threshold: { type: "string" },
    image: { type: "string" },
    "assign-threshold": { type: "string" },
    "suggest-threshold": { type: "string" },
    k: { type: "string", short: "k" },
  });
  const [sub, ...rest] = positionals;
  if (rest.length > (sub === "similar" ? 1 : 0)) throw new UsageError(`faces ${sub} takes no further arguments, got "${rest.join(" ")}"`);
  const dir = resolve(values.index ?? DEFAULT_INDEX);
  const json = values.json === true;
  switch (sub) {
    case "cluster":
      return cluster(dir, json, intFlag(values["min-size"], "min-size", 3, 2), minSamplesFlag(values["min-samples"]));
    case "suggest": {
      const threshold = cosineFlag(values.threshold, "threshold");
      return runPersonsWork(dir, false, async (db) => {
        const report = await db.write((conn) => computeSuggestions(conn, { threshold }));
        if (json) return `${JSON.stringify(report)}\n`;
        const lines = [
          `suggestions: ${report.suggested} new, cosine >= ${report.threshold}, in ${report.searches} batched search${report.searches === 1 ? "" : "es"} (${report.ms} ms)`,
          `  persons: ${report.persons.searched} searched of ${report.persons.total} (skipped: ${report.persons.skippedUnnamed} unnamed, ${report.persons.skippedNoPrototypes} without prototypes)`,
          `  unassigned faces: ${report.faces.searched} searched of ${report.faces.unassigned} (skipped: ${report.faces.skippedPending} already suggested, ${report.faces.skippedChecked} checked against the same prototypes)`,
          `  pre-filter: ${report.comparisons.done} face-person comparisons instead of ${report.comparisons.naive} (${report.comparisons.savedPct}% saved)`,
          ...report.byPerson.map((p) => `  ${String(p.suggested).padStart(5)} look like ${p.name} (person ${p.personId}): imgd persons suggestions ${p.personId}`),
        ];
        return `${lines.join("\n")}\n`;
      });
    }
    case "list": {
      if (values.image === undefined) throw new UsageError("faces list needs --image ID");
      const imageId = intFlag(values.image, "image", 1);
      return runPersonsWork(dir, true, async (db) => {
        const faces = await facesOfImage(db.read, imageId);
        if (json) return `${JSON.stringify({ image: imageId, faces })}\n`;
        return faces.length === 0 ? `no faces in image ${imageId}\n` : `${faces.map(formatFace).join("\n")}\n`;
      });
    }
    case "similar": {
      if (rest.length !== 1) throw new UsageError("usage: imgd faces similar FACE_ID [-k N]");
      const faceId = intFlag(rest[0], "face id", 1);
      const k = intFlag(values.k, "k", 10);
      return runPersonsWork(dir, true, async (db) => {
        const { index } = await FacesIndex.open(db.read, dir);
        const matches = await similarFaceIds(db.read, index, faceId, k);
        const faces = await facesByIds(db.read, matches.map((m) => m.faceId));
        const score = new Map(matches.map((m) => [m.faceId, m.score]));
        const rows = faces.map((f) => ({ ...f, similarity: score.get(f.id)! }));
        if (json) return `${JSON.stringify({ face: faceId, faces: rows })}\n`;
        return rows.length === 0 ? "no other faces\n" : `${rows.map((f) => `${f.similarity.toFixed(3)} ${formatFace(f)}`).join("\n")}\n`;
      });
    }
    case "settings": {
      const assign = cosineFlag(values["assign-threshold"], "assign-threshold");
      const suggest = cosineFlag(values["suggest-threshold"], "suggest-threshold");
      const writing = assign !== undefined || suggest !== undefined;
      return runPersonsWork(dir, !writing, async (db) => {
        if (writing) {
          await db.write(async (conn) => {
            await ensurePersonsTables(conn);
            if (assign !== undefined) await writeThreshold(conn, "assign_threshold", assign);
            if (suggest !== undefined) await writeThreshold(conn, "suggest_threshold", suggest);
          });
        }
        const s = await readSettings(db.read);
        if (json) return `${JSON.stringify({ assign_threshold: s.assignThreshold, suggest_threshold: s.suggestThreshold })}\n`;
        return `assign threshold ${s.assignThreshold} (index time: nearest prototype of a named person)\nsuggest threshold ${s.suggestThreshold} (imgd faces suggest)\n`;
      });
    }
    default:
      throw new UsageError(sub ? `unknown faces command "${sub}"` : "faces needs a command: cluster, suggest, list, similar or settings");
  }
}

async function cluster(dir: string, json: boolean, minClusterSize: number, minSamples: number | undefined): Promise<number> {
  // Every line this job prints carries its id, as does its jobs.jsonl record, so interleaved logs can be told apart.
  const job = randomUUID().slice(0, 8);
  const tag = `[faces cluster ${job}]`;
  const started = performance.now();
  let lastStage = "";
  let lastLine = 0;
  let lastPct = -1;
  const onProgress = (stage: string, fraction: number) => {
    const pct = Math.floor(fraction * 100);
    const now = performance.now();
    // A line when a stage starts or ends, and at most every 2 s (or 10 points) in between.
    if (stage === lastStage && pct < 100 && now - lastLine < 2000 && pct - lastPct < 10) return;
    lastStage = stage;
    lastLine = now;
    lastPct = pct;
    process.stderr.write(`${tag} ${stage} ${pct}% elapsed ${formatDuration(now - started)}\n`);
  };
  if (minSamples === undefined && minClusterSize > MAX_MIN_SAMPLES) {
    process.stderr.write(`${tag} warning: min samples ${MAX_MIN_SAMPLES} (the most), not the min size ${minClusterSize} it defaults to\n`);
  }
  return runPersonsWork(dir, false, async (db) => {
    const report = await db.write((conn) => clusterFaces(conn, { minClusterSize, minSamples, onProgress }));
    const wallMs = performance.now() - started;
    appendJobLog(dir, { job: "faces-cluster", id: job, at: new Date().toISOString(), minClusterSize, wallMs: Math.round(wallMs), ...report });
    if (json) return `${JSON.stringify({ job, wallMs: Math.round(wallMs), ...report })}\n`;
    const p = report.persons;
    const lines = [
      `${report.faces} faces -> ${report.clusters} clusters, ${report.noise} unclustered (${report.exact ? "exact" : "approximate"} HDBSCAN, min size ${minClusterSize}, min samples ${report.minSamples})`,
      `persons: ${p.created} new, ${p.reused} kept, ${p.joinedExisting} joined an existing person, ${p.removed} dissolved; ${report.moved} faces moved; ${p.refreshed} refreshed`,
      `${"stage".padEnd(10)}${"total ms".padStart(10)}${"% wall".padStart(8)}`,
      ...Object.entries(report.timings).map(
        ([stage, ms]) => `${stage.padEnd(10)}${String(Math.round(ms)).padStart(10)}${((100 * ms) / wallMs).toFixed(1).padStart(8)}`,
      ),
      `${"wall".padEnd(10)}${String(Math.round(wallMs)).padStart(10)}`,
      "name them: imgd persons list, then imgd persons name ID NAME",
    ];
    return `${lines.map((l) => `${tag} ${l}`).join("\n")}\n`;
  });
}

/** HDBSCAN keeps min-samples neighbours per face: bounded, as its cost grows with faces × min-samples. */
function minSamplesFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = intFlag(value, "min-samples", 1);
  if (n > MAX_MIN_SAMPLES) {
    throw new UsageError(
      `--min-samples takes at most ${MAX_MIN_SAMPLES}, got ${n}: each face keeps that many neighbours (memory and time grow with ` +
        "faces × min-samples), and more neighbours than a person has faces merges persons",
    );
  }
  return n;
}

function cosineFlag(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!(n > -1 && n <= 1)) throw new UsageError(`--${name} takes a cosine similarity in (-1, 1], got "${value}"`);
  return n;
}
