// Command output keeps one line per record, which tools like grep and wc rely on, whatever a file is called.

/** `text` (a path, an error message) as is, or quoted when a newline or other control character in it would break the line. */
export function printable(text: string): string {
  return /[\u0000-\u001f\u007f]/.test(text) ? JSON.stringify(text) : text;
}
