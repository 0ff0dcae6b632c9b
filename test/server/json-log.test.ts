import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { JsonLog } from "../../src/server/json-log.ts";
import { tempDir } from "./server-harness.ts";

describe("the JSON-lines access log", () => {
  test("every line is appended, in order, as one JSON object, and close waits for the last write", async () => {
    const file = join(tempDir("log"), "access.log");
    const log = new JsonLog(file);
    for (let i = 0; i < 5_000; i++) log.write({ i, path: "/api/search" });
    await log.close();
    const lines = readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    expect(lines.map((l) => l.i)).toEqual(Array.from({ length: 5_000 }, (_, i) => i));
    expect(lines[0]).toMatchObject({ path: "/api/search", time: expect.any(String) });
    expect(log.dropped).toBe(0);
  });

  test("a backlog past its cap drops lines instead of growing, counts them, and says so in the log", async () => {
    const file = join(tempDir("log"), "access.log");
    const log = new JsonLog(file, 4_096);
    // Written synchronously, faster than any write completes: the first line goes out, the rest queue up to 4 KB.
    for (let i = 0; i < 1_000; i++) log.write({ i });
    expect(log.dropped).toBeGreaterThan(0);
    await log.close();
    const lines = readFileSync(file, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l));
    const note = lines.find((l) => l.event === "log-lines-dropped");
    expect(note.dropped).toBe(log.dropped);
    expect(lines.filter((l) => l.i !== undefined).length).toBe(1_000 - log.dropped);
  });

  test("a log file that cannot be opened fails at start, not on the first request", () => {
    expect(() => new JsonLog("/nonexistent-dir/access.log")).toThrow();
  });
});
