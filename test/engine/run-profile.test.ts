import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { RunProfile } from "../../src/engine/run-profile.ts";

test("a run profile writes a CPU profile with samples and one system line per interval", async () => {
  const dir = join(mkdtempSync(join(tmpdir(), "imgd-prof-")), "p");
  const profile = await RunProfile.start(dir, 100);
  const until = performance.now() + 450;
  let x = 0;
  while (performance.now() < until) {
    x += Math.sqrt(x + 1);
    if (Math.floor(x) % 1000 === 0) await Bun.sleep(1);
  }
  const files = await profile.stop();
  const cpu = JSON.parse(readFileSync(files.cpuProfile, "utf8"));
  expect(cpu.nodes.length).toBeGreaterThan(0);
  expect(cpu.endTime).toBeGreaterThan(cpu.startTime);
  const lines = readFileSync(files.system, "utf8").trim().split("\n").map((l) => JSON.parse(l));
  expect(lines.length).toBeGreaterThanOrEqual(2);
  for (const l of lines) {
    expect(l.rssMb).toBeGreaterThan(1);
    expect(l.cpuPct).toBeGreaterThanOrEqual(0);
  }
});
