import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildClipVocab, loadClipVocab } from "../../src/engine/clip-vocab.ts";
import { ClipTokenizer, tokenizerFor } from "../../src/engine/tokenizer.ts";

const tok = tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bundled" });
const tmp = mkdtempSync(join(tmpdir(), "imgd-tokenizer-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function row(ids: BigInt64Array, r = 0, n = 77): number[] {
  return Array.from(ids.subarray(r * n, (r + 1) * n), Number);
}

/** Merges text in the bpe_simple_vocab_16e6 format, rebuilt from a loaded vocabulary's ranks. */
function mergesText(ranks: Map<string, number>, count = ranks.size): string {
  return ["#version: 0.2", ...[...ranks.keys()].slice(0, count)].join("\n") + "\n";
}

describe("bundled CLIP vocabulary", () => {
  test("has OpenAI's 49408 entries with the two markers at the end", () => {
    const v = loadClipVocab("bundled");
    expect(v.decoder.length).toBe(49408);
    expect(v.encoder.size).toBe(49408);
    expect(v.ranks.size).toBe(48894);
    expect(v.encoder.get("<|startoftext|>")).toBe(49406);
    expect(v.encoder.get("<|endoftext|>")).toBe(49407);
    expect(v.byteEncoder[0x20]).toBe("Ġ");
    expect(v.byteDecoder.get("Ġ")).toBe(0x20);
  });

  test("builds in well under 300 ms", () => {
    const text = mergesText(loadClipVocab("bundled").ranks);
    const start = performance.now();
    const v = buildClipVocab(text);
    const ms = performance.now() - start;
    console.log(`vocab build: ${ms.toFixed(1)} ms`);
    expect(v.encoder.size).toBe(49408);
    expect(ms).toBeLessThan(300);
  });
});

describe("ClipTokenizer matches OpenAI's reference ids", () => {
  test("tokenizes 'a photo of a cat' between start and end markers", () => {
    expect(row(tok.tokenize(["a photo of a cat"])).slice(0, 7)).toEqual([49406, 320, 1125, 539, 320, 2368, 49407]);
  });

  test("tokenizes 'Hi there' to four ids", () => {
    expect(row(tok.tokenize(["Hi there"])).slice(0, 4)).toEqual([49406, 1883, 997, 49407]);
  });

  test("encodes whole words and words split into several merges", () => {
    expect(tok.encode("hello")).toEqual([3306]);
    expect(tok.encode("magnificent")).toEqual([10724]);
    expect(tok.encode("magnificently")).toEqual([9725, 2922]);
    expect(tok.encode("hello world!")).toEqual([3306, 1002, 256]);
  });

  test("decodes to lower-case words each followed by a space", () => {
    expect(tok.decode(tok.encode("HELLO"))).toBe("hello ");
    expect(tok.decode(tok.encode("abc123"))).toBe("abc 1 2 3 ");
    expect(tok.decode(tok.encode("let's see here"))).toBe("let 's see here ");
  });

  test("reads a literal end-of-text marker in the text as the single marker token", () => {
    expect(tok.encode("cat<|endoftext|>")).toEqual([2368, 49407]);
  });
});

describe("ClipTokenizer cleans text like the reference", () => {
  test("collapses and trims whitespace", () => {
    expect(tok.encode("  a\n\tphoto  ")).toEqual(tok.encode("a photo"));
  });

  test("ignores case", () => {
    expect(tok.encode("A PHOTO Of A Cat")).toEqual(tok.encode("a photo of a cat"));
  });

  test("unescapes HTML entities, twice", () => {
    expect(tok.encode("salt &amp; pepper")).toEqual(tok.encode("salt & pepper"));
    expect(tok.encode("salt &amp;amp; pepper")).toEqual(tok.encode("salt & pepper"));
    expect(tok.encode("&lt;b&gt; &quot;x&#39; &#65;&#x42;")).toEqual(tok.encode(`<b> "x' ab`));
  });

  test("normalises decomposed accents to the composed form", () => {
    expect(tok.encode("cafe\u0301")).toEqual(tok.encode("caf\u00e9"));
  });

  test("round-trips accented words and emoji through decode", () => {
    expect(tok.decode(tok.encode("Crème brûlée 🐱"))).toBe("crème brûlée 🐱 ");
  });
});

describe("ClipTokenizer.tokenize", () => {
  test("returns one zero-padded row of contextLength ids per text", () => {
    const ids = tok.tokenize(["a photo of a cat", "hi"]);
    expect(ids).toBeInstanceOf(BigInt64Array);
    expect(ids.length).toBe(2 * 77);
    expect(row(ids, 1)).toEqual([49406, 1883, 49407, ...new Array(74).fill(0)]);
    expect(row(ids, 0).slice(7)).toEqual(new Array(70).fill(0));
  });

  test("truncates a long text to contextLength ids ending in end-of-text", () => {
    const long = Array.from({ length: 200 }, (_, i) => `word${i}`).join(" ");
    const ids = row(tok.tokenize([long]));
    expect(ids.length).toBe(77);
    expect(ids[0]).toBe(49406);
    expect(ids[76]).toBe(49407);
    expect(ids.slice(1, 76)).not.toContain(0);
    expect(ids.slice(1, 76)).toEqual(tok.encode(long).slice(0, 75));
  });

  test("keeps a text of exactly contextLength ids whole", () => {
    const ids = row(tok.tokenize(["cat ".repeat(75)]));
    expect(ids.slice(1, 76)).toEqual(new Array(75).fill(2368));
    expect(ids[76]).toBe(49407);
  });

  test("throws naming the text and its length when truncation is off", () => {
    expect(() => tok.tokenize(["cat ".repeat(76)], { truncate: false })).toThrow(/"cat cat .*" is 78 tokens.*77/);
  });

  test("honours a shorter context length", () => {
    const short = new ClipTokenizer(loadClipVocab("bundled"), 5);
    expect(row(short.tokenize(["a photo of a cat"]), 0, 5)).toEqual([49406, 320, 1125, 539, 49407]);
  });

  test("tokenizes 1000 distinct short queries in under 100 ms once warm", () => {
    const words = ["red", "yellow", "car", "dog", "beach", "sunset", "birthday", "cake", "mountain", "snow"];
    const queries = Array.from({ length: 1000 }, (_, i) => `a ${words[i % 10]} ${words[(i / 10) % 10 | 0]} no${i}`);
    tok.tokenize(["warm up"]);
    const start = performance.now();
    const ids = tok.tokenize(queries);
    const ms = performance.now() - start;
    console.log(`1000 queries: ${ms.toFixed(1)} ms`);
    expect(ids.length).toBe(1000 * 77);
    expect(ms).toBeLessThan(100);
  });
});

describe("tokenizerFor", () => {
  test("returns the same tokenizer for the same spec", () => {
    expect(tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bundled" })).toBe(tok);
  });

  test("loads a gzipped bpe_simple_vocab file beside the model", () => {
    const dir = join(tmp, "gz-model");
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir);
    writeFileSync(join(dir, "bpe.txt.gz"), Bun.gzipSync(new TextEncoder().encode(mergesText(loadClipVocab("bundled").ranks))));
    const fromFile = tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bpe.txt.gz" }, dir);
    expect(fromFile).not.toBe(tok);
    expect(row(fromFile.tokenize(["magnificently"]))).toEqual(row(tok.tokenize(["magnificently"])));
  });

  test("loads a Hugging Face vocab.json + merges.txt directory", () => {
    const bundled = loadClipVocab("bundled");
    const dir = join(tmp, "hf-model");
    mkdirSync(join(dir, "tokenizer"), { recursive: true });
    // The 512 byte pieces, the first ten merges ("t h" ... "th e</w>" among them), then the two markers.
    const pieces = [...bundled.decoder.slice(0, 522), "<|startoftext|>", "<|endoftext|>"];
    writeFileSync(join(dir, "tokenizer", "vocab.json"), JSON.stringify(Object.fromEntries(pieces.map((p, i) => [p, i]))));
    writeFileSync(join(dir, "tokenizer", "merges.txt"), mergesText(bundled.ranks, 10));
    const hf = tokenizerFor({ kind: "clip-bpe", contextLength: 8, vocab: "tokenizer" }, dir);
    expect(row(hf.tokenize(["The"]), 0, 8)).toEqual([522, 518, 523, 0, 0, 0, 0, 0]);
    expect(hf.encode("the")).toEqual(tok.encode("the"));
    expect(hf.decode(hf.encode("the thing"))).toBe("the thing ");
  });

  test("names the path when the vocabulary is missing", () => {
    expect(() => tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "nope.txt" }, tmp)).toThrow(/nope\.txt/);
  });
});
