// The engine words its refusals for the CLI, ending in the command that settles them ("merge them with imgd
// persons merge 3 7", "run imgd index with --ocr first"). An HTTP client cannot run those: it is told the route to
// call instead, or what the index lacks and how images get it.
const STAGE_OF_FLAG: Record<string, string> = { "--faces": "face detection", "--objects": "object detection", "--ocr": "text recognition" };

export function inApiTerms(message: string): string {
  const taken = /^("[^]*" is already person (\d+)); merge them with imgd persons merge \d+ (\d+|ID)$/.exec(message);
  if (taken) {
    const [, what, other, self] = taken;
    return self === "ID"
      ? `${what}; give them the faces with POST /api/persons/${other}/assign {"face_ids": [...]}`
      : `${what}; merge them with POST /api/persons/${other}/merge {"sources": [${self}]}`;
  }
  const missing = /^this index has no (.+?)(?: yet)?: run imgd index (?:with )?(--[a-z]+)\b/.exec(message);
  if (missing) {
    const [, what, flag] = missing;
    if (what === "persons") {
      return "this index has no persons yet: create one with POST /api/persons, or name a face cluster with POST /api/persons/{id}/name";
    }
    const stage = STAGE_OF_FLAG[flag!] ?? `the ${flag} stage`;
    return `this index has no ${what} yet: ${stage} finds them when images are indexed, or ingested (POST /api/ingest) on a server that runs it`;
  }
  return message;
}
