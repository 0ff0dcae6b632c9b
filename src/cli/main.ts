#!/usr/bin/env bun
import { USAGE, UsageError, usageFor } from "./usage.ts";

const COMMANDS: Record<string, () => Promise<{ run: (argv: string[]) => Promise<number> }>> = {
  index: () => import("./commands/index-command.ts"),
  query: () => import("./commands/query-command.ts"),
  info: () => import("./commands/info-command.ts"),
  models: () => import("./commands/models-command.ts"),
  serve: () => import("./commands/serve-command.ts"),
  coordinator: () => import("./commands/coordinator-command.ts"),
  worker: () => import("./commands/worker-command.ts"),
  deploy: () => import("./commands/deploy-command.ts"),
  export: () => import("./commands/export-command.ts"),
  dups: () => import("./commands/dups-command.ts"),
  faces: () => import("./commands/faces-command.ts"),
  persons: () => import("./commands/persons-command.ts"),
  bench: () => import("./commands/bench-command.ts"),
  version: () => import("./commands/version-command.ts"),
};

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === "help" && rest[0] && rest[0] in COMMANDS) {
    process.stdout.write(usageFor(rest[0]));
    return 0;
  }
  if (!command || command === "help" || command === "--help" || command === "-h") {
    process.stdout.write(USAGE);
    return command ? 0 : 2;
  }
  if (command === "--version") return (await COMMANDS.version!()).run([]);
  const load = COMMANDS[command];
  if (!load) throw new UsageError(`unknown command "${command}"`);
  if (rest.includes("--help") || rest.includes("-h")) {
    process.stdout.write(usageFor(command));
    return 0;
  }
  return (await load()).run(rest);
}

// `imgd query ... | head` closes the pipe early: that is the reader's choice, not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError) {
    const command = process.argv[2];
    process.stderr.write(`imgd: ${err.message}\n\n${command && command in COMMANDS ? usageFor(command) : USAGE}`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`imgd: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.IMGD_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    process.exitCode = 1;
  }
}
