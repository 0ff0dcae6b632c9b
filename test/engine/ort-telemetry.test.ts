// onnxruntime's telemetry stays off: imgd loads it with ORT_DISABLE_TELEMETRY=1 unless the user set the variable.
import { expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const NATIVE = join(import.meta.dir, "../../src/engine/native.ts");
const MODEL = join(import.meta.dir, "../../models/test-clip/text.onnx");

/** What a process that opens a session through loadOrt leaves behind: telemetry's files, in a HOME and TMPDIR of its own. */
async function traces(env: Record<string, string> = {}): Promise<{ home: boolean; tmp: boolean }> {
  const home = mkdtempSync(join(tmpdir(), "imgd-ort-home-"));
  const script = `const { loadOrt } = await import(${JSON.stringify(NATIVE)});
    await loadOrt().InferenceSession.create(${JSON.stringify(MODEL)});`;
  // onnxruntime keeps its telemetry off on its own where CI is set (as on our CI): unset, so the check can fail there too.
  const { CI: _ci, ORT_DISABLE_TELEMETRY: _ort, ...base } = process.env;
  const child = Bun.spawn([process.execPath, "-e", script], { env: { ...base, HOME: home, TMPDIR: home, ...env }, stderr: "inherit" });
  expect(await child.exited).toBe(0);
  const found = { home: existsSync(join(home, ".cache", "Microsoft")), tmp: existsSync(join(home, `mat-debug-${child.pid}.log`)) };
  rmSync(home, { recursive: true, force: true });
  return found;
}

// Without imgd's setting this process would write both (checked by hand with ORT_DISABLE_TELEMETRY=0: .cache/Microsoft
// and mat-debug-<pid>.log appear); that run is not repeated here, as telemetry on may try to upload.
test("loading onnxruntime leaves no telemetry database or debug log", async () => {
  expect(await traces({})).toEqual({ home: false, tmp: false });
});
