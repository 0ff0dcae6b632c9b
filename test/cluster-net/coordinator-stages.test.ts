// A coordinator restarted on a job with stages: `--faces` without model flags resumes the job with its models (the
// workers get them, and the model files served are theirs); another model is still refused, as another CLIP model is.
import { expect, test } from "bun:test";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { PROTOCOL_VERSION } from "../../src/cluster-net/protocol.ts";
import { makePhotos, tempDir } from "./cluster-harness.ts";

const worker = { host: "h", pid: 1, cores: 2, memoryBytes: 1e9, threads: 1, version: "0.1.0", models: ["test-clip"], pathMap: [] };
const faces = { name: "faces" as const, models: { detector: "test-scrfd", embedder: "test-arcface" } };

test("a resumed job's stages keep their models when no model flag is given; another model is refused", async () => {
  const root = tempDir("coord-stages");
  await makePhotos(join(root, "photos"), 3);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), model: "test-clip", leaseTtlMs: 60_000 };
  await (await Coordinator.open({ ...opts, stages: [faces] })).close();

  const events: string[] = [];
  const resumed = await Coordinator.open({ ...opts, stages: [{ name: "faces", models: {} }], onEvent: (e) => events.push(e) });
  try {
    expect(resumed.opts.stages).toEqual([faces]);
    expect(events).toContain("stages keep the job's models: faces test-scrfd + test-arcface");
    const reg = await resumed.register({ protocol: PROTOCOL_VERSION, worker });
    expect(reg.job.stages).toEqual([faces]);
  } finally {
    await resumed.close();
  }

  const other = Coordinator.open({ ...opts, stages: [{ name: "faces", models: { detector: "scrfd-500m" } }] });
  await expect(other).rejects.toThrow(
    /holds a job for .*stages faces test-scrfd \+ test-arcface\), and this run asks for stages faces scrfd-500m \+ test-arcface: run it with the job's/,
  );
  // Run again without --faces: the message says that is what differs.
  await expect(Coordinator.open({ ...opts, stages: [] })).rejects.toThrow(/holds a job for .*, and this run asks for no stages: /);
});

test("a resumed job keeps its CLIP model when none is named, a new job takes the default, and another model is refused", async () => {
  const root = tempDir("coord-model");
  await makePhotos(join(root, "photos"), 3);
  const opts = { roots: [join(root, "photos")], storage: join(root, "storage"), leaseTtlMs: 60_000 };
  const fresh = await Coordinator.open({ ...opts, storage: join(root, "other-storage") });
  expect(fresh.opts.model).toBe("clip-vit-b32");
  await fresh.close();

  await (await Coordinator.open({ ...opts, model: "test-clip" })).close();
  const resumed = await Coordinator.open(opts);
  try {
    expect(resumed.opts.model).toBe("test-clip");
    expect((await resumed.register({ protocol: PROTOCOL_VERSION, worker })).job.model).toBe("test-clip");
  } finally {
    await resumed.close();
  }
  await expect(Coordinator.open({ ...opts, model: "clip-vit-b32" })).rejects.toThrow(/holds a job for .*\(model test-clip\), and this run asks for model clip-vit-b32: /);
});
