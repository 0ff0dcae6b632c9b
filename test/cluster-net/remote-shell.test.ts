import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { sq, viaSh } from "../../src/cluster-net/remote-shell.ts";
import { tempDir } from "./cluster-harness.ts";

const dir = join(tempDir("remote-shell"), `it's a "dir" with \\ and !x`);
mkdirSync(dir, { recursive: true });
writeFileSync(join(dir, "f!le"), "content\n");

// Commands like deploy's, and words holding every character a shell may treat specially.
const inners = [
  `echo 'single q' "dbl $HOME" a\\ b; printf '%s\\n' 'x\\ny' "!x" '!x' 'a!b'; echo $((1+2)) >/dev/null; [ -n "$HOME" ] && echo ok`,
  `cat ${sq(join(dir, "f!le"))} 2>/dev/null; cd ${sq(dir)} && pwd; i=0; while [ $i -lt 3 ]; do i=$((i+1)); done; echo $i`,
  `printf '%s\\n' ${sq("it's \\ back\\\\slash \\' !! !$ `x` $y ~ * ? {a,b} ; & | < > ( ) # ^a^b")}`,
  `echo '' ""; echo '\\'; exit 7`,
  `echo ${"x".repeat(5000)}`,
  "",
];

function run(shell: string, command: string) {
  const r = spawnSync(shell, ["-c", command], { encoding: "utf8", env: { ...process.env, HOME: "/nonexistent-home" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test("a wrapped command reaches /bin/sh exactly as written, quotes, backslashes, $ and ! included", () => {
  for (const inner of inners) expect(run("sh", viaSh(inner))).toEqual(run("sh", inner));
  expect(run("sh", viaSh(inners[2]!)).stdout).toBe("it's \\ back\\\\slash \\' !! !$ `x` $y ~ * ? {a,b} ; & | < > ( ) # ^a^b\n");
});

// fish reads \\ and \' inside single quotes, csh/tcsh expand ! there: the login shells the wrapping is for.
// Those not installed here are left out (CI has sh, bash and tcsh; deploy-login-shell.test.ts says which ran).
const loginShells = ["sh", ...["bash", "zsh", "fish", "tcsh", "csh"].filter((s) => Bun.which(s))];
test.each(loginShells)("through %s as the login shell, a wrapped command runs as sh runs it", (shell) => {
  for (const inner of inners) expect({ inner, ...run(shell, viaSh(inner)) }).toEqual({ inner, ...run("sh", inner) });
});

test("a newline, which csh cannot quote, is refused rather than sent", () => {
  expect(() => viaSh("echo a\necho b")).toThrow("cannot quote a newline for csh/tcsh");
});
