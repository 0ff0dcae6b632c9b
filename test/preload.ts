// Every temp dir a test run makes (tmpdir() here and in the processes it starts) goes under one dir of its own,
// removed when the run ends: the suite makes thousands (indexes, photos, shards), 25 GB over a day of runs here.
// IMGD_KEEP_TMP=1 keeps it to look into after a failure; the path is printed then.
import { afterAll } from "bun:test";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const runDir = mkdtempSync(join(tmpdir(), "imgd-test-run-"));
// As /tmp is: some tests run a command as `nobody`, which must reach the files they made.
chmodSync(runDir, 0o1777);
process.env.TMPDIR = runDir;

// A hook in a preload file runs once, after every test file.
afterAll(() => {
  if (process.env.IMGD_KEEP_TMP) process.stderr.write(`test temp files kept in ${runDir}\n`);
  else rmSync(runDir, { recursive: true, force: true });
});
