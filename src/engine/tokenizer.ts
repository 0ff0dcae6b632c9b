// OpenAI CLIP's text tokenizer (simple_tokenizer.py + clip.tokenize): cleaned text in, zero-padded id rows out.
import { resolve } from "node:path";
import { cleanClipText, WHITESPACE } from "./clip-text-clean.ts";
import { type ClipVocab, END_OF_TEXT, loadClipVocab, START_OF_TEXT } from "./clip-vocab.ts";
import type { TokenizerSpec, TokenPadding } from "./types.ts";

/** The reference's pre-tokeniser; the text is already lower-cased, `i` only mirrors re.IGNORECASE. */
const PRE_TOKEN = new RegExp(
  `<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^${WHITESPACE}\\p{L}\\p{N}]+`,
  "giu",
);

/**
 * Bounds the per-word cache of a long-running server fed arbitrary queries (~85 bytes a word: 1.7 MB here, where
 * 100K let a text thread fed ever-new words grow by 8.5 MB); the words of real queries stay far below it.
 */
const MAX_CACHED_WORDS = 20_000;

export interface TokenizeOptions {
  /** Cut over-long texts to the context length (ending in end-of-text) instead of throwing. Default true. */
  truncate?: boolean;
  /** Rows as wide as the context length ("max_length", the default) or as the batch's longest row ("longest"). */
  padTo?: TokenPadding;
}

/** `count` rows of `width` ids each: start, text, end, zero padding. */
export interface TokenRows {
  ids: BigInt64Array;
  width: number;
}

export class ClipTokenizer {
  readonly startId: number;
  readonly endId: number;
  private readonly cache = new Map<string, number[]>();
  private readonly utf8 = new TextEncoder();

  constructor(
    private readonly vocab: ClipVocab,
    readonly contextLength = 77,
  ) {
    this.startId = specialId(vocab, START_OF_TEXT);
    this.endId = specialId(vocab, END_OF_TEXT);
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    for (const [word] of cleanClipText(text).matchAll(PRE_TOKEN)) {
      let wordIds = this.cache.get(word);
      if (!wordIds) {
        wordIds = this.encodeWord(word);
        if (this.cache.size >= MAX_CACHED_WORDS) this.cache.clear();
        this.cache.set(word, wordIds);
      }
      for (const id of wordIds) ids.push(id);
    }
    return ids;
  }

  /** One row per text, `width` ids each; `width` never exceeds the context length. */
  tokenize(texts: string[], opts: TokenizeOptions = {}): TokenRows {
    const rows = texts.map((text) => this.row(text, opts.truncate ?? true));
    const width = opts.padTo === "longest" ? rows.reduce((w, r) => Math.max(w, r.length), 0) : this.contextLength;
    const ids = new BigInt64Array(texts.length * width);
    rows.forEach((row, r) => {
      for (let i = 0; i < row.length; i++) ids[r * width + i] = BigInt(row[i]!);
    });
    return { ids, width };
  }

  /** Start, text, end; cut to the context length with the end token last. */
  private row(text: string, truncate: boolean): number[] {
    const n = this.contextLength;
    const ids = [this.startId, ...this.encode(text), this.endId];
    if (ids.length <= n) return ids;
    if (!truncate) {
      const shown = text.length > 80 ? `${text.slice(0, 77)}...` : text;
      throw new Error(`text "${shown}" is ${ids.length} tokens, longer than the context length of ${n}`);
    }
    ids.length = n;
    ids[n - 1] = this.endId;
    return ids;
  }

  decode(ids: number[]): string {
    const text = ids
      .map((id) => {
        const piece = this.vocab.piece(id);
        if (piece === undefined) throw new Error(`token id ${id} is not in the CLIP vocabulary`);
        return piece;
      })
      .join("");
    const bytes = new Uint8Array(text.length);
    for (let i = 0; i < text.length; i++) bytes[i] = this.vocab.byteDecoder.get(text[i]!)!;
    // Like the reference, a cut-off multi-byte character decodes to U+FFFD rather than failing.
    return new TextDecoder().decode(bytes).replaceAll("</w>", " ");
  }

  private encodeWord(word: string): number[] {
    // The reference seeds its cache with the two markers, so a literal "<|endoftext|>" in a query is one token.
    if (word === START_OF_TEXT) return [this.startId];
    if (word === END_OF_TEXT) return [this.endId];
    const bytes = this.utf8.encode(word);
    const ids = Array.from(bytes, (b, i) => (i === bytes.length - 1 ? this.vocab.byteEndIds : this.vocab.byteIds)[b]!);
    const missing = ids.indexOf(-1);
    if (missing >= 0) {
      const piece = this.vocab.byteEncoder[bytes[missing]!]! + (missing === bytes.length - 1 ? "</w>" : "");
      throw new Error(`BPE piece "${piece}" of "${word}" is not in the CLIP vocabulary`);
    }
    return this.bpe(ids);
  }

  /** Merges the lowest-ranked adjacent pair everywhere, left to right, until no adjacent pair is a known merge. */
  private bpe(word: number[]): number[] {
    const vocab = this.vocab;
    while (word.length > 1) {
      let best = -1;
      let first = -1;
      let second = -1;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = vocab.rank(word[i]!, word[i + 1]!);
        if (rank >= 0 && (best < 0 || rank < best)) {
          best = rank;
          first = word[i]!;
          second = word[i + 1]!;
        }
      }
      if (best < 0) break;
      const into = vocab.mergedId(best);
      const merged: number[] = [];
      for (let i = 0; i < word.length; ) {
        if (word[i] === first && word[i + 1] === second && i < word.length - 1) {
          merged.push(into);
          i += 2;
        } else {
          merged.push(word[i++]!);
        }
      }
      word = merged;
    }
    return word;
  }
}

function specialId(vocab: ClipVocab, token: string): number {
  const id = vocab.id(token);
  if (id < 0) throw new Error(`the CLIP vocabulary has no ${token} token`);
  return id;
}

const tokenizers = new Map<string, ClipTokenizer>();

/** One tokenizer per vocabulary and context length; a vocabulary path is relative to the model's directory. */
export function tokenizerFor(spec: TokenizerSpec, modelDir?: string): ClipTokenizer {
  if (spec.kind !== "clip-bpe") throw new Error(`unsupported tokenizer kind "${spec.kind}"`);
  const source = spec.vocab === "bundled" ? "bundled" : resolve(modelDir ?? ".", spec.vocab);
  const key = `${source}\n${spec.contextLength}`;
  let tokenizer = tokenizers.get(key);
  if (!tokenizer) {
    tokenizer = new ClipTokenizer(loadClipVocab(source), spec.contextLength);
    tokenizers.set(key, tokenizer);
  }
  return tokenizer;
}
