// Whether a host can run the binary deploy would upload: read from the ELF header, compared with the host's
// `uname -sm`. An x86-64 imgd on an arm64 box (or a Mac) fails only at exec, with a shell's "Exec format error"
// in the worker's log; deploy says so before uploading 170 MB.
import { closeSync, openSync, readSync } from "node:fs";

/** ELF e_machine values and the `uname -m` names Linux gives the same machines. */
const MACHINES: Record<number, { name: string; uname: string[] }> = {
  0x3e: { name: "x86-64", uname: ["x86_64"] },
  0xb7: { name: "arm64", uname: ["aarch64", "arm64"] },
  0x28: { name: "arm", uname: ["armv7l", "armv6l", "armv8l"] },
  0x03: { name: "x86", uname: ["i386", "i486", "i586", "i686"] },
  0xf3: { name: "riscv64", uname: ["riscv64"] },
};

/** The machine an ELF executable is built for, or null for anything else (a script, another format). */
export function elfMachine(path: string): { name: string; uname: string[] } | null {
  const head = Buffer.alloc(20);
  const fd = openSync(path, "r");
  try {
    if (readSync(fd, head, 0, 20, 0) < 20) return null;
  } finally {
    closeSync(fd);
  }
  if (head.readUInt32BE(0) !== 0x7f454c46) return null;
  const machine = head[5] === 2 ? head.readUInt16BE(18) : head.readUInt16LE(18);
  return MACHINES[machine] ?? { name: `ELF machine 0x${machine.toString(16)}`, uname: [] };
}

/** What a host says of itself: `uname -sm`, then the first line `ldd --version` prints (glibc's or musl's). */
export const PLATFORM_PROBE = "uname -sm; ldd --version 2>&1 | head -n 1";

/** Why a host whose PLATFORM_PROBE printed `probe` cannot run the binary at `path`, or null when it can (or cannot tell). */
export function platformMismatch(path: string, probe: string): string | null {
  const machine = elfMachine(path);
  const [uname = "", libc = ""] = probe.trim().split("\n");
  const [system, arch] = uname.trim().split(/\s+/);
  if (!machine || !system || !arch) return null;
  if (system !== "Linux") return `host runs ${system}; imgd workers run on Linux`;
  if (!machine.uname.includes(arch)) return `host is ${arch}, the binary is built for ${machine.name} (give --binary built for ${arch})`;
  // Bun's Linux executables link glibc; on musl (Alpine) the loader is missing and exec fails with "not found".
  if (/musl/i.test(libc)) return "host's C library is musl (Alpine?); the binary needs glibc";
  return null;
}
