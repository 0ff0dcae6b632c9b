// Workers fetch the job's model files from the coordinator: only listed files are served, only whole files with the
// listed sha256 land, and a worker that has them already fetches nothing.
import { afterAll, beforeAll, expect, test } from "bun:test";
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { startCoordinator, type RunningCoordinator } from "../../src/cluster-net/coordinator-server.ts";
import { MeshClient } from "../../src/cluster-net/mesh-client.ts";
import { DIGESTS_FILE, fetchJobModels } from "../../src/cluster-net/model-fetch.ts";
import { MODEL_SHA256_HEADER, ModelFilesReply } from "../../src/cluster-net/protocol.ts";
import { sha256File } from "../../src/engine/identity.ts";
import { fetchStatus, makePhotos, MODELS, startCoordinatorProc, startWorkerProc, tempDir, TOKEN, until, type Proc } from "./cluster-harness.ts";

const JOB_FILES = ["test-clip.json", "test-clip/image.onnx", "test-clip/text.onnx", "test-yolo/model.onnx"];
const auth = { authorization: `Bearer ${TOKEN}` };

const procs: Proc[] = [];
const servers: { stop(force?: boolean): unknown }[] = [];
let running: RunningCoordinator;
let root: string;

beforeAll(async () => {
  root = tempDir("fetch");
  await makePhotos(join(root, "photos"), 6);
  running = await startCoordinator({
    roots: [join(root, "photos")],
    storage: join(root, "storage-inproc"),
    model: "test-clip",
    stages: [{ name: "objects", models: { model: "test-yolo" } }],
    modelsDir: MODELS,
    batchFiles: 3,
    leaseTtlMs: 5000,
    token: TOKEN,
    hostname: "127.0.0.1",
  });
});
afterAll(async () => {
  procs.forEach((p) => p.proc.kill("SIGKILL"));
  servers.forEach((s) => s.stop(true));
  await running.stop();
});

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: "utf8" }).filter((p) => statSync(join(dir, p)).isFile()).sort();
}

test("a worker with no models of its own fetches the job's models, indexes, and a second start fetches nothing", async () => {
  const { p: coordinator, url } = await startCoordinatorProc([join(root, "photos")], join(root, "storage"), [
    "--batch", "3", "--objects", "--object-model", "test-yolo", "--serve",
  ]);
  procs.push(coordinator);
  const models = join(root, "worker-models");
  const cwd = join(root, "worker-cwd");
  mkdirSync(join(models, "test-clip"), { recursive: true });
  mkdirSync(cwd);
  // What a worker killed mid-transfer leaves behind: this host's dead process's partial file is cleared away.
  const dead = Bun.spawn(["true"]);
  await dead.exited;
  writeFileSync(join(models, "test-clip", `image.onnx.${hostname()}-${dead.pid}.part`), "partial");
  // No $IMGD_MODELS, no ./models, a HOME of its own: what this worker has is what it fetched.
  const env = { IMGD_MODELS: "", HOME: join(root, "home") };
  const first = startWorkerProc(url, ["--models", models], env, cwd);
  procs.push(first);
  expect(await first.exited).toBe(0);
  const status = await until(async () => {
    const s = await fetchStatus(url);
    return s.phase === "merged" ? s : null;
  }, 20_000, "merged");
  expect(status.done).toBe(6);

  expect(filesUnder(models)).toEqual([DIGESTS_FILE, ...JOB_FILES]);
  for (const path of JOB_FILES) expect(await sha256File(join(models, path))).toBe(await sha256File(join(MODELS, path)));
  const log = first.stderr.join("\n");
  expect(log).toMatch(/\[worker\] fetching test-clip\/image\.onnx \(\d+\.\d kB\) from the coordinator/);
  expect(log).toMatch(/\[worker\] fetched test-yolo\/model\.onnx in \d+\.\d s \(\d+\.\d MB\/s\)/);
  expect(existsSync(join(root, "home", ".cache", "imgd"))).toBe(false);

  const mtimes = JOB_FILES.map((p) => statSync(join(models, p)).mtimeMs);
  const second = startWorkerProc(url, ["--models", models], env, cwd);
  procs.push(second);
  expect(await second.exited).toBe(0);
  const again = second.stderr.join("\n");
  expect(again).not.toContain("fetching");
  expect(again).toContain(`the job's ${JOB_FILES.length} model files are already here`);
  expect(JOB_FILES.map((p) => statSync(join(models, p)).mtimeMs)).toEqual(mtimes);

  // Without --models the files go to ~/.cache/imgd/models, which the engine then finds.
  const third = startWorkerProc(url, [], env, cwd);
  procs.push(third);
  expect(await third.exited).toBe(0);
  expect(filesUnder(join(root, "home", ".cache", "imgd", "models"))).toEqual([DIGESTS_FILE, ...JOB_FILES]);
  coordinator.proc.kill("SIGTERM");
  await coordinator.exited;
}, 60_000);

test("with --no-fetch-models a worker without the job's model is refused at registration, as before", async () => {
  const cwd = join(root, "nofetch-cwd");
  mkdirSync(cwd);
  const models = join(root, "nofetch-models");
  const p = startWorkerProc(running.url, ["--models", models, "--no-fetch-models"], { IMGD_MODELS: "", HOME: join(root, "nofetch-home") }, cwd);
  procs.push(p);
  expect(await p.exited).toBe(1);
  expect(p.stderr.join("\n")).toContain("does not have model test-clip");
  expect(existsSync(models)).toBe(false);
}, 20_000);

test("with --no-fetch-models a worker whose copy of the job's model has other weights is refused before it registers", async () => {
  const models = join(root, "other-weights");
  mkdirSync(join(models, "test-clip"), { recursive: true });
  mkdirSync(join(models, "test-yolo"), { recursive: true });
  for (const path of JOB_FILES) copyFileSync(join(MODELS, path), join(models, path));
  // Same name, same size, one weight byte changed: only the sha256 tells.
  const image = readFileSync(join(models, "test-clip/image.onnx"));
  image[image.length >> 1] ^= 0x01;
  writeFileSync(join(models, "test-clip/image.onnx"), image);
  const cwd = join(root, "other-weights-cwd");
  mkdirSync(cwd);
  const env = { IMGD_MODELS: "", HOME: join(root, "other-weights-home") };
  const before = (await fetchStatus(running.url)).workers.length;
  const refused = startWorkerProc(running.url, ["--models", models, "--no-fetch-models"], env, cwd);
  procs.push(refused);
  expect(await refused.exited).toBe(1);
  const log = refused.stderr.join("\n");
  expect(log).toContain(`model test-clip on this host is not the coordinator's: ${join(models, "test-clip/image.onnx")} differs`);
  expect(log).toContain("without --no-fetch-models");
  expect((await fetchStatus(running.url)).workers.length).toBe(before);

  // The coordinator's own bytes pass the check, and the worker registers.
  copyFileSync(join(MODELS, "test-clip/image.onnx"), join(models, "test-clip/image.onnx"));
  const accepted = startWorkerProc(running.url, ["--models", models, "--no-fetch-models"], env, cwd);
  procs.push(accepted);
  await accepted.waitFor(/\[worker\] registered as/, 20_000);
  accepted.proc.kill("SIGKILL");
  await accepted.exited;
}, 40_000);

test("GET /v1/models lists each file of the job's models with its size and sha256", async () => {
  const res = await fetch(`${running.url}/v1/models`, { headers: auth });
  expect(res.status).toBe(200);
  const reply = ModelFilesReply.parse(await res.json());
  expect(reply.unavailable).toEqual([]);
  expect(reply.files.map((f) => f.path)).toEqual(JOB_FILES);
  for (const f of reply.files) {
    expect(f.bytes).toBe(statSync(join(MODELS, f.path)).size);
    expect(f.sha256).toBe(await sha256File(join(MODELS, f.path)));
  }
  expect(reply.files.map((f) => f.model)).toEqual(["test-clip", "test-clip", "test-clip", "test-yolo"]);
});

test("GET /v1/models/file sends a listed file with its length and sha256", async () => {
  const res = await fetch(`${running.url}/v1/models/file?path=${encodeURIComponent("test-yolo/model.onnx")}`, { headers: auth });
  expect(res.status).toBe(200);
  const body = new Uint8Array(await res.arrayBuffer());
  const expected = await Bun.file(join(MODELS, "test-yolo/model.onnx")).bytes();
  expect(body).toEqual(expected);
  expect(res.headers.get("content-length")).toBe(String(expected.byteLength));
  expect(res.headers.get(MODEL_SHA256_HEADER)).toBe(await sha256File(join(MODELS, "test-yolo/model.onnx")));
});

test("both model routes need the mesh token", async () => {
  for (const path of ["/v1/models", "/v1/models/file?path=test-clip%2Fimage.onnx"]) {
    expect((await fetch(`${running.url}${path}`)).status).toBe(401);
    expect((await fetch(`${running.url}${path}`, { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  }
});

test("a path that is not on the list is 404, however it is spelled", async () => {
  const paths = [
    "../../etc/passwd",
    "/etc/passwd",
    join(MODELS, "test-clip/image.onnx"),
    "test-clip/../test-clip/image.onnx",
    "./test-clip/image.onnx",
    "test-clip//image.onnx",
    "test-clip/image.onnx/",
    "test-clip",
    "test-scrfd/model.onnx",
    "",
  ];
  for (const path of paths) {
    const res = await fetch(`${running.url}/v1/models/file?path=${encodeURIComponent(path)}`, { headers: auth });
    expect({ path, status: res.status }).toEqual({ path, status: 404 });
    expect((await res.json()).error).toContain("is not one of this job's model files");
  }
  expect((await fetch(`${running.url}/v1/models/file`, { headers: auth })).status).toBe(404);
});

test("a file corrupted in transit is refused by its sha256, tried again, and never left at the target path", async () => {
  let corrupted = 0;
  // Between worker and coordinator: flips one byte in the middle of image.onnx, passes everything else through.
  const proxy = Bun.serve({
    hostname: "127.0.0.1",
    port: 0,
    async fetch(req) {
      const url = new URL(req.url);
      const res = await fetch(`${running.url}${url.pathname}${url.search}`, { headers: req.headers });
      if (url.searchParams.get("path") !== "test-clip/image.onnx") return new Response(res.body, res);
      const bytes = new Uint8Array(await res.arrayBuffer());
      bytes[bytes.length >> 1]! ^= 0xff;
      corrupted++;
      return new Response(bytes, { status: res.status, headers: res.headers });
    },
  });
  servers.push(proxy);
  const target = join(root, "corrupt-target");
  mkdirSync(target);
  const lines: string[] = [];
  const err = await fetchJobModels(new MeshClient(`http://127.0.0.1:${proxy.port}`, TOKEN), {
    target,
    dirs: [target],
    log: (l) => lines.push(l),
    onRetry: (e) => lines.push(e.message),
  }).catch((e) => e);
  expect(err).toBeInstanceOf(Error);
  expect(err.message).toMatch(/^could not fetch model file test-clip\/image\.onnx from the coordinator: got sha256 [0-9a-f]{64}, expected [0-9a-f]{64} \(3 tries\)$/);
  expect(corrupted).toBe(3);
  // The manifest before it arrived intact; the bad tower is neither at its path nor left as a .part.
  expect(filesUnder(target)).toEqual([DIGESTS_FILE, "test-clip.json"]);
});

test("a coordinator that serves no models (an older imgd) leaves the worker with what it has", async () => {
  const old = Bun.serve({ hostname: "127.0.0.1", port: 0, fetch: () => new Response("404 Not Found", { status: 404 }) });
  servers.push(old);
  const target = join(root, "old-target");
  const lines: string[] = [];
  const report = await fetchJobModels(new MeshClient(`http://127.0.0.1:${old.port}`, TOKEN), {
    target,
    dirs: [target],
    log: (l) => lines.push(l),
  });
  expect(report).toEqual({ served: false, fetched: [], present: [] });
  expect(lines).toEqual(["[worker] the coordinator serves no models (an older imgd); using the models on this host"]);
  expect(existsSync(target)).toBe(false);
});
