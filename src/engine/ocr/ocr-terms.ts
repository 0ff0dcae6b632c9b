// The words of recognised text as the text index stores them and as `--text-in` looks them up: lowercased, accents
// and compatibility forms folded (NFKD, so "Café" and full-width "ＥＸＩＴ" match "cafe" and "exit"), split on anything
// that is not a letter or digit. Han and kana have no spaces between words, so each such character is a term.
const CJK = String.raw`\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}`;
const TERM = new RegExp(String.raw`[${CJK}]|(?:(?![${CJK}])[\p{L}\p{N}])+`, "gu");

export function textTerms(text: string): string[] {
  const folded = text.normalize("NFKD").replace(/\p{M}/gu, "").toLowerCase();
  return folded.match(TERM) ?? [];
}

/** Distinct terms of several texts, in first-seen order. */
export function distinctTerms(texts: Iterable<string>): string[] {
  const seen = new Set<string>();
  for (const t of texts) for (const term of textTerms(t)) seen.add(term);
  return [...seen];
}
