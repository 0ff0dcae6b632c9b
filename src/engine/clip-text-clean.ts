// The text cleanup CLIP's simple_tokenizer applies before BPE: ftfy.fix_text, html.unescape twice, whitespace
// collapsing, lower-casing. ftfy is not available, so the fixes it makes to ordinary typed or pasted text are
// reproduced; its mojibake repair (re-decoding text that went through the wrong codec) is not.

/**
 * Unicode White_Space, which is what `\s` means in the `regex` module the reference uses. JavaScript's `\s` differs:
 * it has U+FEFF and lacks U+0085.
 */
export const WHITESPACE = "\\t\\n\\v\\f\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

const WHITESPACE_RUNS = new RegExp(`[${WHITESPACE}]+`, "g");

/** simple_tokenizer's whitespace_clean(basic_clean(text)).lower(). */
export function cleanClipText(text: string): string {
  const fixed = fixText(text);
  const unescaped = unescapeHtml(unescapeHtml(fixed));
  return unescaped.replace(WHITESPACE_RUNS, " ").replace(/^ | $/g, "").toLowerCase();
}

const TERMINAL_ESCAPES = /\x1b\[[\d;]*[a-zA-Z]/g;
const LIGATURES: Record<string, string> = {
  "\u0132": "IJ",
  "\u0133": "ij",
  "\ufb00": "ff",
  "\ufb01": "fi",
  "\ufb02": "fl",
  "\ufb03": "ffi",
  "\ufb04": "ffl",
  "\ufb05": "\u017ft",
  "\ufb06": "st",
};
const LIGATURE_CHARS = /[\u0132\u0133\ufb00-\ufb06]/g;
const WIDE_OR_NARROW = /[\u3000\uff01-\uffef]/g;
const C1_CONTROLS = /[\x80-\x9f]/g;
const SINGLE_QUOTES = /[\u02bc\u2018-\u201b]/g;
const DOUBLE_QUOTES = /[\u201c-\u201f]/g;
const CONTROL_CHARS =
  /[\x00-\x08\x0b\x0e-\x1f\x7f\u206a-\u206f\ufeff\ufff9-\ufffc\u{1d173}-\u{1d17a}\u{e0000}-\u{e007f}]/gu;
const SEMICOLON_ENTITY = /&#?[0-9A-Za-z]{1,24};/g;
const windows1252 = new TextDecoder("windows-1252");

/** The parts of ftfy.fix_text (default settings) that change text typed or pasted by a person, run to a fixed point. */
function fixText(text: string): string {
  // ftfy leaves entities alone in text that looks like HTML markup.
  const unescapeEntities = !text.includes("<");
  for (;;) {
    let next = text;
    if (unescapeEntities && next.includes("&")) next = next.replace(SEMICOLON_ENTITY, unescapeFtfyEntity);
    next = next
      .replace(TERMINAL_ESCAPES, "")
      // A C1 control in real text is nearly always a Windows-1252 byte decoded as Latin-1 (U+0085 → "…").
      .replace(C1_CONTROLS, (c) => windows1252.decode(new Uint8Array([c.charCodeAt(0)])))
      .replace(LIGATURE_CHARS, (c) => LIGATURES[c]!)
      .replace(WIDE_OR_NARROW, (c) => c.normalize("NFKC"))
      .replace(SINGLE_QUOTES, "'")
      .replace(DOUBLE_QUOTES, '"')
      .replace(/\r\n|[\r\u2028\u2029]/g, "\n")
      .replace(CONTROL_CHARS, "")
      .normalize("NFC");
    if (next === text) return text;
    text = next;
  }
}

function unescapeFtfyEntity(entity: string): string {
  const named = NAMED_ENTITIES.get(entity.slice(1));
  if (named !== undefined) return named;
  if (!entity.startsWith("&#")) return entity;
  const unescaped = unescapeHtml(entity);
  return unescaped.includes(";") ? entity : unescaped;
}

/** Python's html.unescape: HTML5 character references, with or without the semicolon where HTML5 allows that. */
export function unescapeHtml(text: string): string {
  if (!text.includes("&")) return text;
  return text.replace(/&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)/g, (_, ref: string) => {
    if (ref[0] === "#") return numericReference(ref);
    const whole = NAMED_ENTITIES.get(ref);
    if (whole !== undefined) return whole;
    // "&copy2024" is "©2024": the longest legacy name (one allowed without ";") that starts the reference wins.
    for (let n = ref.length - 1; n > 1; n--) {
      const value = NAMED_ENTITIES.get(ref.slice(0, n));
      if (value !== undefined) return value + ref.slice(n);
    }
    return `&${ref}`;
  });
}

function numericReference(ref: string): string {
  const digits = ref.endsWith(";") ? ref.slice(1, -1) : ref.slice(1);
  const code = digits[0] === "x" || digits[0] === "X" ? parseInt(digits.slice(1), 16) : parseInt(digits, 10);
  if (code === 0) return "\ufffd";
  if (code === 0x0d) return "\r";
  // Browsers read these as Windows-1252 bytes, and so does Python.
  if (code >= 0x80 && code <= 0x9f) return windows1252.decode(new Uint8Array([code]));
  if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) return "\ufffd";
  if (isDroppedCodePoint(code)) return "";
  return String.fromCodePoint(code);
}

/** Code points html.unescape drops: C0/C1 controls other than whitespace, and Unicode noncharacters. */
function isDroppedCodePoint(code: number): boolean {
  return (
    (code >= 0x01 && code <= 0x08) ||
    code === 0x0b ||
    (code >= 0x0e && code <= 0x1f) ||
    code === 0x7f ||
    (code >= 0xfdd0 && code <= 0xfdef) ||
    (code & 0xfffe) === 0xfffe
  );
}

/**
 * The HTML5 names likely in a caption or query: every name HTML5 also accepts without a semicolon (Latin-1 and
 * `amp` `lt` `gt` `quot`), plus HTML 4's punctuation, Greek letters and common symbols. Rarer HTML5 names are left as
 * written.
 */
const NAMED_ENTITIES: Map<string, string> = (() => {
  const entities = new Map<string, string>();
  const legacy = (name: string, value: string) => {
    entities.set(name, value);
    entities.set(`${name};`, value);
  };
  const latin1 =
    "nbsp iexcl cent pound curren yen brvbar sect uml copy ordf laquo not shy reg macr deg plusmn sup2 sup3 acute " +
    "micro para middot cedil sup1 ordm raquo frac14 frac12 frac34 iquest Agrave Aacute Acirc Atilde Auml Aring AElig " +
    "Ccedil Egrave Eacute Ecirc Euml Igrave Iacute Icirc Iuml ETH Ntilde Ograve Oacute Ocirc Otilde Ouml times Oslash " +
    "Ugrave Uacute Ucirc Uuml Yacute THORN szlig agrave aacute acirc atilde auml aring aelig ccedil egrave eacute " +
    "ecirc euml igrave iacute icirc iuml eth ntilde ograve oacute ocirc otilde ouml divide oslash ugrave uacute ucirc " +
    "uuml yacute thorn yuml";
  latin1.split(" ").forEach((name, i) => legacy(name, String.fromCharCode(0xa0 + i)));
  for (const [name, value] of [
    ["amp", "&"], ["AMP", "&"], ["lt", "<"], ["LT", "<"], ["gt", ">"], ["GT", ">"],
    ["quot", '"'], ["QUOT", '"'], ["COPY", "\u00a9"], ["REG", "\u00ae"],
  ] as const) {
    legacy(name, value);
  }
  const greek = "Alpha Beta Gamma Delta Epsilon Zeta Eta Theta Iota Kappa Lambda Mu Nu Xi Omicron Pi Rho - Sigma Tau " +
    "Upsilon Phi Chi Psi Omega";
  greek.split(" ").forEach((name, i) => {
    if (name === "-") return;
    entities.set(`${name};`, String.fromCharCode(0x391 + i));
    entities.set(`${name.toLowerCase()};`, String.fromCharCode(0x3b1 + i));
  });
  entities.set("sigmaf;", "\u03c2");
  const symbols: Record<string, number> = {
    apos: 0x27, OElig: 0x152, oelig: 0x153, Scaron: 0x160, scaron: 0x161, Yuml: 0x178, fnof: 0x192, circ: 0x2c6,
    tilde: 0x2dc, ensp: 0x2002, emsp: 0x2003, thinsp: 0x2009, zwnj: 0x200c, zwj: 0x200d, lrm: 0x200e, rlm: 0x200f,
    hyphen: 0x2010, dash: 0x2010, ndash: 0x2013, mdash: 0x2014, lsquo: 0x2018, rsquo: 0x2019, sbquo: 0x201a,
    ldquo: 0x201c, rdquo: 0x201d, bdquo: 0x201e, dagger: 0x2020, Dagger: 0x2021, bull: 0x2022, hellip: 0x2026,
    permil: 0x2030, prime: 0x2032, Prime: 0x2033, lsaquo: 0x2039, rsaquo: 0x203a, oline: 0x203e, frasl: 0x2044,
    euro: 0x20ac, trade: 0x2122, larr: 0x2190, uarr: 0x2191, rarr: 0x2192, darr: 0x2193, harr: 0x2194,
    minus: 0x2212, infin: 0x221e, ne: 0x2260, le: 0x2264, ge: 0x2265, starf: 0x2605, star: 0x2606, spades: 0x2660,
    clubs: 0x2663, hearts: 0x2665, diams: 0x2666, check: 0x2713, cross: 0x2717,
  };
  for (const [name, code] of Object.entries(symbols)) entities.set(`${name};`, String.fromCharCode(code));
  return entities;
})();
