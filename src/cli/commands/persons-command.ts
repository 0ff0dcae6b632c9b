import { resolve } from "node:path";
import { counted } from "../../engine/counted.ts";
import { openPersonsCatalog, type PersonsCatalog } from "../../engine/faces/persons-catalog.ts";
import {
  assignFaces,
  createPerson,
  deletePerson,
  getPerson,
  listPersons,
  mergePersons,
  namePerson,
  resolvePerson,
  splitPerson,
  type PersonFace,
  type PersonSummary,
} from "../../engine/faces/persons.ts";
import { hasPersons, PersonsError } from "../../engine/faces/persons-table.ts";
import { personSuggestions, rejectSuggestions } from "../../engine/faces/suggestions.ts";
import { DEFAULT_INDEX, intFlag, parse } from "../args.ts";
import { printable } from "../printable.ts";
import { UsageError } from "../usage.ts";

/** `imgd persons list|show|name|merge|split|assign|suggestions|reject` */
export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    index: { type: "string" },
    json: { type: "boolean" },
    named: { type: "boolean" },
    unnamed: { type: "boolean" },
    limit: { type: "string" },
    name: { type: "string" },
    to: { type: "string" },
    none: { type: "boolean" },
  });
  const [sub, ...args] = positionals;
  const dir = resolve(values.index ?? DEFAULT_INDEX);
  const json = values.json === true;
  const limit = intFlag(values.limit, "limit", 100);
  const out = (value: unknown, text: () => string) => (json ? `${JSON.stringify(value)}\n` : `${text()}\n`);
  switch (sub) {
    case "list": {
      expectArgs(args, 0, "persons list");
      if (values.named && values.unnamed) throw new UsageError("--named and --unnamed exclude each other");
      const named = values.named ? true : values.unnamed ? false : undefined;
      return runPersonsWork(dir, true, async (db) => {
        const listed = await listPersons(db.read, { named, limit });
        const none =
          named !== undefined
            ? `no ${named ? "named" : "unnamed"} persons`
            : (await hasPersons(db.read))
              ? "no persons: imgd faces cluster put none of the faces in a group (a smaller --min-size groups more)"
              : "no persons yet: run imgd faces cluster";
        return out(listed, () =>
          listed.total === 0
            ? none
            : [...listed.persons.map(formatPerson), ...(listed.total > listed.persons.length ? [`... ${listed.total - listed.persons.length} more (--limit)`] : [])].join("\n"),
        );
      });
    }
    case "show": {
      expectArgs(args, 1, "persons show PERSON");
      return runPersonsWork(dir, true, async (db) => {
        const { person, faces } = await getPerson(db.read, await resolvePerson(db.read, args[0]!), { limit });
        return out({ person, faces }, () => [formatPerson(person), ...faces.map(formatFace)].join("\n"));
      });
    }
    case "name": {
      if (args.length > 2) throw new UsageError(`persons name takes one NAME: quote a name with spaces, as in "${args.slice(1).join(" ")}"`);
      expectArgs(args, 2, "persons name PERSON NAME");
      return runPersonsWork(dir, false, async (db) => {
        const person = await db.write(async (conn) => namePerson(conn, await resolvePerson(db.read, args[0]!), args[1]!));
        return out(person, () => formatPerson(person));
      });
    }
    case "delete": {
      expectArgs(args, 1, "persons delete PERSON");
      return runPersonsWork(dir, false, async (db) => {
        const result = await db.write(async (conn) => deletePerson(conn, await resolvePerson(db.read, args[0]!)));
        return out(result, () => `deleted ${formatPerson(result.deleted)}; its faces belong to nobody now`);
      });
    }
    case "merge": {
      if (args.length < 2) throw new UsageError("persons merge TARGET SOURCE... needs a target and at least one source");
      return runPersonsWork(dir, false, async (db) => {
        const target = await resolvePerson(db.read, args[0]!);
        const sources = await Promise.all(args.slice(1).map((a) => resolvePerson(db.read, a)));
        const person = await db.write((conn) => mergePersons(conn, target, sources));
        return out(person, () => `merged into ${formatPerson(person)}`);
      });
    }
    case "split": {
      if (args.length < 2) throw new UsageError("persons split PERSON FACE_ID... needs a person and the faces to move");
      const faceIds = args.slice(1).map((a) => intFlag(a, "face id", 1));
      return runPersonsWork(dir, false, async (db) => {
        const person = await resolvePerson(db.read, args[0]!);
        const result = await db.write((conn) => splitPerson(conn, person, faceIds, values.name ?? null));
        return out(result, () => `kept: ${formatPerson(result.from)}\nnew:  ${formatPerson(result.to)}`);
      });
    }
    case "assign": {
      if (args.length === 0) throw new UsageError("persons assign FACE_ID... --to PERSON | --none needs face ids");
      if ((values.to === undefined) === (values.none !== true)) throw new UsageError("persons assign takes exactly one of --to PERSON and --none");
      const faceIds = args.map((a) => intFlag(a, "face id", 1));
      return runPersonsWork(dir, false, async (db) => {
        const result = await db.write(async (conn) => {
          if (values.none) return assignFaces(conn, faceIds, null);
          // --to a name nobody has yet creates that person.
          const target = await resolvePerson(db.read, values.to!).catch(async (error) => {
            if (error instanceof PersonsError && error.kind === "not-found" && !/^\d+$/.test(values.to!.trim())) {
              return createPerson(conn, values.to!);
            }
            throw error;
          });
          return assignFaces(conn, faceIds, target);
        });
        return out(result, () => `${counted(result.assigned, "face")} ${values.none ? "unassigned" : `assigned to ${values.to}`}`);
      });
    }
    case "suggestions": {
      expectArgs(args, 1, "persons suggestions PERSON");
      return runPersonsWork(dir, true, async (db) => {
        const person = await resolvePerson(db.read, args[0]!);
        const list = await personSuggestions(db.read, person, limit);
        return out({ person, suggestions: list }, () =>
          list.length === 0
            ? `no pending suggestions for person ${person} (run imgd faces suggest)`
            : [
                ...list.map((s) => `  face ${String(s.faceId).padStart(6)}  ${s.score.toFixed(3)}  ${printable(s.path)}`),
                `accept: imgd persons assign FACE_ID... --to ${person}   reject: imgd persons reject ${person} FACE_ID...`,
              ].join("\n"),
        );
      });
    }
    case "reject": {
      if (args.length < 2) throw new UsageError("persons reject PERSON FACE_ID... needs a person and face ids");
      const faceIds = args.slice(1).map((a) => intFlag(a, "face id", 1));
      return runPersonsWork(dir, false, async (db) => {
        const person = await resolvePerson(db.read, args[0]!);
        const rejected = await db.write((conn) => rejectSuggestions(conn, person, faceIds));
        return out({ person, rejected }, () => `${counted(rejected, "suggestion")} rejected`);
      });
    }
    default:
      throw new UsageError(
        sub ? `unknown persons command "${sub}"` : "persons needs a command: list, show, name, delete, merge, split, assign, suggestions or reject",
      );
  }
}

/** Opens the index's catalog, runs `work`, prints what it returns; a PersonsError is the user's to fix (exit 1). */
export async function runPersonsWork(dir: string, readOnly: boolean, work: (db: PersonsCatalog) => Promise<string>): Promise<number> {
  const db = await openPersonsCatalog(dir, { readOnly });
  try {
    process.stdout.write(await work(db));
    return 0;
  } catch (error) {
    if (!(error instanceof PersonsError)) throw error;
    process.stderr.write(`imgd: ${error.message}\n`);
    return 1;
  } finally {
    db.close();
  }
}

export function formatPerson(p: PersonSummary): string {
  const name = p.name === null ? "(unnamed)" : printable(p.name);
  const pending = p.pendingSuggestions > 0 ? `, ${p.pendingSuggestions} suggested` : "";
  return `${String(p.id).padStart(5)}  ${name}  ${counted(p.faces, "face")} in ${counted(p.images, "image")}, ${counted(p.prototypes, "prototype")}${pending}`;
}


export function formatFace(f: PersonFace): string {
  const box = f.box.map((v) => Math.round(v)).join(",");
  const who = f.person !== null ? printable(f.person) : f.personId === null ? "-" : `person ${f.personId}`;
  return `  face ${String(f.id).padStart(6)}  image ${f.imageId}  box ${box}  ${who}${f.assignedBy ? ` (${f.assignedBy})` : ""}  ${printable(f.path)}`;
}

function expectArgs(args: string[], n: number, usage: string): void {
  if (args.length !== n) throw new UsageError(`usage: imgd ${usage}`);
}
