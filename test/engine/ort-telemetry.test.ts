// onnxruntime's telemetry stays off: imgd loads it with ORT_DISABLE_TELEMETRY=1 unless the user set the variable.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NATIVE = join(import.meta.dir, "../../src/engine/native.ts");
const MODEL = join(import.meta.dir, "../../models/test-clip/text.onnx");

/** What a process that opens a session through loadOrt leaves behind: telemetry's files, in a HOME and TMPDIR of its own. */
async function traces(env: Record<string, string>): Promise<{ home: boolean; tmp: boolean }> {
  const home = mkdtempSync(join(tmpdir(), "imgd-ort-home-"));
  const script = `const { loadOrt } = await import(${JSON.stringify(NATIVE)});
    await loadOrt().InferenceSession.create(${JSON.stringify(MODEL)});`;
  const child = Bun.spawn([process.execPath, "-e", script], { env: { ...process.env, HOME: home, TMPDIR: home, ...env }, stderr: "inherit" });
  expect(await child.exited).toBe(0);
  const found = { home: existsSync(join(home, ".cache", "Microsoft")), tmp: existsSync(join(home, `mat-debug-${child.pid}.log`)) };
  rmSync(home, { recursive: true, force: true });
  return found;
}

test("loading onnxruntime leaves no telemetry database or debug log, unless the user turns telemetry on", async () => {
  const { ORT_DISABLE_TELEMETRY: _, ...rest } = process.env;
  process.env = rest as typeof process.env;
  expect(await traces({})).toEqual({ home: false, tmp: false });
  // The same run with the user's own setting: what onnxruntime does when left alone, so the check above can fail.
  expect(await traces({ ORT_DISABLE_TELEMETRY: "0" })).toEqual({ home: true, tmp: true });
});
