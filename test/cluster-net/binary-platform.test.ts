import { expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { elfMachine, platformMismatch } from "../../src/cluster-net/binary-platform.ts";
import { tempDir } from "./cluster-harness.ts";

const glibc = "ldd (Debian GLIBC 2.36-9+deb12u14) 2.36";
// The Bun running this test is a real x86-64 or arm64 Linux executable.
const bun = process.execPath;
const here = process.arch === "arm64" ? "aarch64" : "x86_64";
const other = process.arch === "arm64" ? "x86_64" : "aarch64";

test("reads the machine an executable is built for from its ELF header; a script has none", () => {
  expect(elfMachine(bun)?.uname).toContain(here);
  const dir = tempDir("platform");
  writeFileSync(join(dir, "script"), "#!/bin/sh\necho hi\n");
  expect(elfMachine(join(dir, "script"))).toBeNull();
  // Bun's own ELF header with its e_machine (offset 18) set to the other machine's: 0xb7 arm64, 0x3e x86-64.
  const head = readFileSync(bun).subarray(0, 20);
  head.writeUInt16LE(process.arch === "arm64" ? 0x3e : 0xb7, 18);
  writeFileSync(join(dir, "other"), head);
  expect(elfMachine(join(dir, "other"))?.uname).toContain(other);
});

test("a host of another machine, system or C library is refused with the reason; the same kind passes", () => {
  expect(platformMismatch(bun, `Linux ${here}\n${glibc}\n`)).toBeNull();
  expect(platformMismatch(bun, `Linux ${other}\n${glibc}\n`)).toBe(
    `host is ${other}, the binary is built for ${elfMachine(bun)!.name} (give --binary built for ${other})`,
  );
  expect(platformMismatch(bun, "Darwin arm64\nldd: command not found\n")).toBe("host runs Darwin; imgd workers run on Linux");
  expect(platformMismatch(bun, `Linux ${here}\nmusl libc (${here})\n`)).toBe("host's C library is musl (Alpine?); the binary needs glibc");
  // Nothing to go by: deploy goes on, as before.
  expect(platformMismatch(bun, "")).toBeNull();
});
