import { afterAll, describe, expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type ClipVocab, clipVocabFromMerges, loadClipVocab } from "../../src/engine/clip-vocab.ts";
import { ClipTokenizer, tokenizerFor, type TokenRows } from "../../src/engine/tokenizer.ts";

const SOT = 49406;
const EOT = 49407;
const tok = tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bundled" });
const tmp = mkdtempSync(join(tmpdir(), "imgd-tokenizer-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function row({ ids, width }: TokenRows, r = 0): number[] {
  return Array.from(ids.subarray(r * width, (r + 1) * width), Number);
}

function padded(ids: number[], n = 77): number[] {
  return [...ids, ...new Array(n - ids.length).fill(0)];
}

/** Merges text in the bpe_simple_vocab_16e6 format, rebuilt from a loaded vocabulary's merges. */
function mergesText(vocab: ClipVocab, count = vocab.mergeCount): string {
  return ["#version: 0.2", ...vocab.mergeLines().slice(0, count)].join("\n") + "\n";
}

/** Every piece, by id. */
function pieces(vocab: ClipVocab): (string | undefined)[] {
  return Array.from({ length: vocab.size }, (_, id) => vocab.piece(id));
}

// Hugging Face transformers, tests/models/clip/test_tokenization_clip.py (openai/clip-vit-base-patch32, slow
// tokenizer with ftfy): the shared integration string and the ids it must produce.
const HF_INTEGRATION_TEXT =
  "This is a test 😊\nI was born in 92000, and this is falsé.\n生活的真谛是\nHi  Hello\nHi   Hello\n\n \n  \n Hello\n" +
  "<s>\nhi<s>there\nThe following string should be properly encoded: Hello.\nBut ird and ปี   ird   ด\nHey how are you doing";
const HF_INTEGRATION_IDS = [
  589, 533, 320, 1628, 3020, 328, 739, 2683, 530, 280, 273, 271, 271, 271, 267, 537, 589, 533, 2778, 82, 4166, 269,
  33375, 162, 112, 119, 163, 248, 226, 41570, 164, 108, 249, 42891, 363, 1883, 3306, 1883, 3306, 3306, 283, 338, 285,
  1883, 283, 338, 285, 997, 518, 3473, 9696, 1535, 655, 12560, 524, 33703, 281, 3306, 269, 767, 2770, 537, 1777, 505,
  20278, 2770, 38825, 2189, 829, 631, 592, 1960,
];
const HF_INTEGRATION_DECODED =
  "this is a test 😊 i was born in 9 2 0 0 0 , and this is falsé . 生活的真谛是 hi hello hi hello hello < s > hi < s > " +
  "there the following string should be properly encoded : hello . but ird and ป ี ird ด hey how are you doing";

describe("bundled CLIP vocabulary", () => {
  test("has OpenAI's 49408 entries with the two markers at the end", () => {
    const v = loadClipVocab("bundled");
    expect(v.size).toBe(49408);
    expect(new Set(pieces(v)).size).toBe(49408);
    expect(v.mergeCount).toBe(48894);
    expect(v.id("<|startoftext|>")).toBe(SOT);
    expect(v.id("<|endoftext|>")).toBe(EOT);
    expect(v.piece(49405)).toBe("jekyll</w>");
    expect(v.id("jekyll</w>")).toBe(49405);
    expect(v.piece(49408)).toBeUndefined();
    expect(v.id("jekyll")).toBe(-1);
    expect(v.byteEncoder[0x20]).toBe("Ġ");
    expect(v.byteDecoder.get("Ġ")).toBe(0x20);
  });

  test("keeps merges whose pieces are quotes or backslashes, which the package stores escaped", () => {
    const v = loadClipVocab("bundled");
    expect(v.rank(v.id("."), v.id('"</w>'))).toBeGreaterThanOrEqual(0);
    expect(v.mergeLines().some((merge) => merge.includes("\\"))).toBe(true);
  });

  test("loads cold in a fresh process in well under 300 ms", () => {
    const script = `const t = performance.now();
      const { loadClipVocab } = await import(${JSON.stringify(join(import.meta.dir, "../../src/engine/clip-vocab.ts"))});
      const size = loadClipVocab("bundled").size;
      console.log(JSON.stringify({ ms: performance.now() - t, size }));`;
    const child = Bun.spawnSync([process.execPath, "-e", script]);
    const { ms, size } = JSON.parse(child.stdout.toString());
    console.log(`cold bundled vocab (import + read + build): ${ms.toFixed(1)} ms`);
    expect(size).toBe(49408);
    expect(ms).toBeLessThan(300);
  });

  test("rebuilds from a merge list in well under 300 ms", () => {
    const merges = loadClipVocab("bundled").mergeLines();
    const start = performance.now();
    const v = clipVocabFromMerges(merges);
    const ms = performance.now() - start;
    console.log(`vocab build from merges: ${ms.toFixed(1)} ms`);
    expect(pieces(v)).toEqual(pieces(loadClipVocab("bundled")));
    expect(ms).toBeLessThan(300);
  });
});

describe("ClipTokenizer matches published reference ids", () => {
  test("tokenizes 'a photo of a cat' and 'a photo of a dog' between start and end markers", () => {
    const ids = tok.tokenize(["a photo of a cat", "a photo of a dog"]);
    expect(row(ids, 0)).toEqual(padded([SOT, 320, 1125, 539, 320, 2368, EOT]));
    expect(row(ids, 1)).toEqual(padded([SOT, 320, 1125, 539, 320, 1929, EOT]));
  });

  test("tokenizes 'Hi there' to four ids", () => {
    expect(row(tok.tokenize(["Hi there"])).slice(0, 4)).toEqual([SOT, 1883, 997, EOT]);
  });

  test("encodes whole words and words split into several merges", () => {
    expect(tok.encode("hello")).toEqual([3306]);
    expect(tok.encode("magnificent")).toEqual([10724]);
    expect(tok.encode("magnificently")).toEqual([9725, 2922]);
    expect(tok.encode("hello world!")).toEqual([3306, 1002, 256]);
    expect(tok.encode("Hello world!!!")).toEqual([3306, 1002, 995]);
    expect(tok.encode("an illustration")).toEqual([550, 6052]);
  });

  test("encodes Hugging Face's integration text (emoji, digits, accents, CJK, Thai marks, markup) to its 72 ids", () => {
    expect(tok.encode(HF_INTEGRATION_TEXT)).toEqual(HF_INTEGRATION_IDS);
    expect(tok.decode(HF_INTEGRATION_IDS)).toBe(`${HF_INTEGRATION_DECODED} `);
  });

  test("splits punctuation, quotes and dashes off words", () => {
    expect(tok.encode("a dog, a house.")).toEqual([320, 1929, 267, 320, 1212, 269]);
    expect(tok.encode('a sign saying "Here lies Cesar"')).toEqual([320, 2292, 4455, 257, 763, 3205, 28603, 257]);
    expect(tok.encode("a sign saying 'Here lies Cesar'")).toEqual([320, 2292, 4455, 262, 763, 3205, 28603, 262]);
    expect(tok.encode("cat---dog-\u2014-rabbit")).toEqual([2368, 11079, 1929, 12, 6718, 268, 10274]);
    expect(tok.encode("A'veA'llA's")).toEqual([320, 1200, 320, 1342, 320, 568]);
  });

  test("encodes accented Latin and Japanese through their UTF-8 bytes", () => {
    expect(tok.encode("coraz\u00f3n")).toEqual([851, 854, 13926]);
    expect(tok.encode("まあ、お待ちなさい。")).toEqual([
      4813, 122, 4813, 480, 45262, 4813, 232, 161, 122, 227, 4813, 94, 29104, 4813, 243, 38850, 38000,
    ]);
  });

  test("encodes empty and whitespace-only text to no ids", () => {
    expect(tok.encode("")).toEqual([]);
    expect(tok.encode("  \t  \n")).toEqual([]);
    expect(row(tok.tokenize([""]))).toEqual(padded([SOT, EOT]));
  });

  test("decodes to lower-case words each followed by a space", () => {
    expect(tok.decode(tok.encode("HELLO"))).toBe("hello ");
    expect(tok.decode(tok.encode("abc123"))).toBe("abc 1 2 3 ");
    expect(tok.decode(tok.encode("let's see here"))).toBe("let 's see here ");
    expect(tok.decode([320, 2533, 6765, 320, 10297])).toBe("a person riding a motorcycle ");
  });

  test("decodes an unknown id as an error naming it", () => {
    expect(() => tok.decode([49408])).toThrow(/49408/);
  });

  test("reads a literal end-of-text marker in the text as the single marker token", () => {
    expect(tok.encode("cat<|endoftext|>")).toEqual([2368, EOT]);
  });
});

describe("ClipTokenizer cleans text like the reference", () => {
  test("collapses and trims whitespace, including non-breaking and ideographic spaces", () => {
    expect(tok.encode("  a\n\tphoto  ")).toEqual(tok.encode("a photo"));
    expect(tok.encode("a\u00a0photo\u3000of\u2003a cat")).toEqual([320, 1125, 539, 320, 2368]);
  });

  test("ignores case", () => {
    expect(tok.encode("A PHOTO Of A Cat")).toEqual(tok.encode("a photo of a cat"));
  });

  test("unescapes HTML entities twice, like html.unescape(html.unescape(text))", () => {
    expect(tok.encode("salt &amp; pepper")).toEqual(tok.encode("salt & pepper"));
    expect(tok.encode("salt &amp;amp; pepper")).toEqual(tok.encode("salt & pepper"));
    expect(tok.encode("&lt;b&gt; &quot;x&#39; &#65;&#x42;")).toEqual(tok.encode(`<b> "x' ab`));
    expect(tok.encode("caf&eacute; &copy2024 &hellip;")).toEqual(tok.encode("café ©2024 …"));
  });

  test("leaves unknown entities and bare ampersands as written", () => {
    expect(tok.encode("a &notanentity; b & c")).toEqual(tok.encode("a ¬anentity; b & c"));
    expect(tok.decode(tok.encode("tom & jerry &zzz;"))).toBe("tom & jerry & zzz ; ");
  });

  test("normalises decomposed accents to the composed form", () => {
    expect(tok.encode("cafe\u0301")).toEqual(tok.encode("caf\u00e9"));
  });

  test("straightens curly quotes and apostrophes as ftfy does", () => {
    expect(tok.encode("it\u2019s a \u201cdog\u201d")).toEqual(tok.encode(`it's a "dog"`));
  });

  test("maps ligatures and full-width letters to plain ones as ftfy does", () => {
    expect(tok.encode("\ufb01sh")).toEqual(tok.encode("fish"));
    expect(tok.encode("\uff21 \uff43\uff41\uff54\uff01")).toEqual(tok.encode("a cat!"));
  });

  test("drops invisible control characters and reads a stray C1 control as Windows-1252", () => {
    expect(tok.encode("\ufeffred\u0007 car")).toEqual(tok.encode("red car"));
    expect(tok.encode("wait\u0085")).toEqual(tok.encode("wait\u2026"));
  });

  test("round-trips accented words and emoji through decode", () => {
    expect(tok.decode(tok.encode("Crème brûlée 🐱"))).toBe("crème brûlée 🐱 ");
  });
});

describe("ClipTokenizer.tokenize", () => {
  test("returns one zero-padded row of contextLength ids per text", () => {
    const ids = tok.tokenize(["a photo of a cat", "hi"]);
    expect(ids.ids).toBeInstanceOf(BigInt64Array);
    expect(ids.width).toBe(77);
    expect(ids.ids.length).toBe(2 * 77);
    expect(row(ids, 1)).toEqual(padded([SOT, 1883, EOT]));
  });

  test("pads to contextLength when asked for max_length, as by default", () => {
    expect(tok.tokenize(["hi"], { padTo: "max_length" }).width).toBe(77);
  });

  test("pads to the longest row of the batch, start and end tokens included, when asked for longest", () => {
    const ids = tok.tokenize(["a photo of a cat", "hi"], { padTo: "longest" });
    expect(ids.width).toBe(7);
    expect(ids.ids.length).toBe(2 * 7);
    expect(row(ids, 0)).toEqual([SOT, 320, 1125, 539, 320, 2368, EOT]);
    expect(row(ids, 1)).toEqual([SOT, 1883, EOT, 0, 0, 0, 0]);
    expect(tok.tokenize([""], { padTo: "longest" }).width).toBe(2);
  });

  test("never pads wider than contextLength: a longer text is cut with the end token last", () => {
    const ids = tok.tokenize(["cat ".repeat(100), "hi"], { padTo: "longest" });
    expect(ids.width).toBe(77);
    expect(row(ids, 0)).toEqual([SOT, ...new Array(75).fill(2368), EOT]);
    expect(row(ids, 1)).toEqual(padded([SOT, 1883, EOT]));
  });

  test("truncates like instant-clip-tokenizer's published rows at context length 6", () => {
    const short = new ClipTokenizer(loadClipVocab("bundled"), 6);
    const ids = short.tokenize(["Hi", "How are you?", "I'm fine, thanks!"]);
    expect(row(ids)).toEqual([SOT, 1883, EOT, 0, 0, 0]);
    expect(row(ids, 1)).toEqual([SOT, 829, 631, 592, 286, EOT]);
    expect(row(ids, 2)).toEqual([SOT, 328, 880, 3797, 267, EOT]);
    const ten = new ClipTokenizer(loadClipVocab("bundled"), 10);
    expect(row(ten.tokenize(["blaa bla"]))).toEqual(padded([SOT, 2205, 320, 19630, EOT], 10));
  });

  test("truncates a long text to 77 ids: start, the first 75 text ids, end", () => {
    const twice = `${HF_INTEGRATION_TEXT}\n${HF_INTEGRATION_TEXT}`;
    const ids = row(tok.tokenize([twice]));
    expect(ids).toEqual([SOT, ...[...HF_INTEGRATION_IDS, ...HF_INTEGRATION_IDS].slice(0, 75), EOT]);
  });

  test("keeps a text of exactly contextLength ids whole", () => {
    const ids = row(tok.tokenize(["cat ".repeat(75)]));
    expect(ids.slice(1, 76)).toEqual(new Array(75).fill(2368));
    expect(ids[76]).toBe(EOT);
  });

  test("throws naming the text and its length when truncation is off", () => {
    expect(() => tok.tokenize(["cat ".repeat(76)], { truncate: false })).toThrow(/"cat cat .*" is 78 tokens.*77/);
    expect(row(tok.tokenize(["cat ".repeat(75)], { truncate: false }))[76]).toBe(EOT);
  });

  test("tokenizes 1000 distinct short queries in under 100 ms once warm", () => {
    const words = ["red", "yellow", "car", "dog", "beach", "sunset", "birthday", "cake", "mountain", "snow"];
    const queries = Array.from({ length: 1000 }, (_, i) => `a ${words[i % 10]} ${words[(i / 10) % 10 | 0]} no${i}`);
    tok.tokenize(["warm up"]);
    const start = performance.now();
    const ids = tok.tokenize(queries);
    const ms = performance.now() - start;
    console.log(`1000 queries: ${ms.toFixed(1)} ms`);
    expect(row(ids, 999)).toEqual(row(tok.tokenize([queries[999]!])));
    expect(ms).toBeLessThan(100);
  });
});

describe("tokenizerFor", () => {
  test("returns the same tokenizer for the same spec", () => {
    expect(tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bundled" })).toBe(tok);
  });

  test("loads a gzipped bpe_simple_vocab file beside the model", () => {
    const dir = join(tmp, "gz-model");
    mkdirSync(dir, { recursive: true });
    const gz = Bun.gzipSync(new TextEncoder().encode(mergesText(loadClipVocab("bundled"))));
    writeFileSync(join(dir, "bpe_simple_vocab_16e6.txt.gz"), gz);
    const fromFile = tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "bpe_simple_vocab_16e6.txt.gz" }, dir);
    expect(fromFile).not.toBe(tok);
    expect(fromFile.encode(HF_INTEGRATION_TEXT)).toEqual(HF_INTEGRATION_IDS);
  });

  test("reads only the merges the reference reads from a longer plain-text merges file", () => {
    const dir = join(tmp, "txt-model");
    mkdirSync(dir, { recursive: true });
    const text = mergesText(loadClipVocab("bundled")) + "imgd extra\nimgdextra merge\n";
    writeFileSync(join(dir, "bpe.txt"), text);
    const v = loadClipVocab(join(dir, "bpe.txt"));
    expect(v.mergeCount).toBe(48894);
    expect(v.mergeLines()).toEqual(loadClipVocab("bundled").mergeLines());
  });

  test("loads a Hugging Face vocab.json + merges.txt directory", () => {
    const bundled = loadClipVocab("bundled");
    const dir = join(tmp, "hf-model");
    mkdirSync(join(dir, "tokenizer"), { recursive: true });
    // The 512 byte pieces, the first ten merges ("t h" ... "th e</w>" among them), then the two markers.
    const hfPieces = [...pieces(bundled).slice(0, 522), "<|startoftext|>", "<|endoftext|>"];
    writeFileSync(join(dir, "tokenizer", "vocab.json"), JSON.stringify(Object.fromEntries(hfPieces.map((p, i) => [p, i]))));
    writeFileSync(join(dir, "tokenizer", "merges.txt"), mergesText(bundled, 10));
    const hf = tokenizerFor({ kind: "clip-bpe", contextLength: 8, vocab: "tokenizer" }, dir);
    expect(row(hf.tokenize(["The"]))).toEqual([522, 518, 523, 0, 0, 0, 0, 0]);
    expect(hf.encode("the")).toEqual(tok.encode("the"));
    expect(hf.decode(hf.encode("the thing"))).toBe("the thing ");
  });

  test("names the path when the vocabulary is missing", () => {
    expect(() => tokenizerFor({ kind: "clip-bpe", contextLength: 77, vocab: "nope.txt" }, tmp)).toThrow(/nope\.txt/);
  });
});
