// Remote commands are POSIX sh, but OpenSSH runs an exec request through the user's LOGIN shell (`$SHELL -c CMD`),
// which may be fish or csh/tcsh. So every command is handed over as `exec /bin/sh -c <quoted>`, quoted the one way
// sh, bash, dash, zsh, fish and csh/tcsh all read back unchanged.

/**
 * Quotes `s` as one word for sh, bash, dash, zsh, fish and csh/tcsh alike: single-quoted runs that hold no `'`, `\`
 * or `!`, and those three backslash-escaped outside the quotes. Inside single quotes fish still reads `\\` and `\'`
 * as escapes, and csh/tcsh expand `!` history events even there (in `csh -c` too); outside quotes, `\x` is x in
 * all of them.
 */
export function sq(s: string): string {
  if (s.includes("\n")) throw new Error(`cannot quote a newline for csh/tcsh: ${JSON.stringify(s)}`);
  if (s === "") return "''";
  return s.replace(/[^'\\!]+|['\\!]/g, (part) => (part.length === 1 && "'\\!".includes(part) ? `\\${part}` : `'${part}'`));
}

/** The command line that runs the sh command `command` with /bin/sh, whatever the login shell reading it. */
export function viaSh(command: string): string {
  return `exec /bin/sh -c ${sq(command)}`;
}
