import { expect, test } from "bun:test";
import { join } from "node:path";
import { Coordinator } from "../../src/cluster-net/coordinator.ts";
import { makePhotos, tempDir } from "./cluster-harness.ts";

test("close waits for a tick in progress, and a tick after close touches nothing", async () => {
  const root = tempDir("coordinator-close");
  await makePhotos(join(root, "photos"), 6);
  const events: string[] = [];
  const coordinator = await Coordinator.open({
    roots: [join(root, "photos")],
    storage: join(root, "storage"),
    model: "test-clip",
    batchFiles: 5,
    leaseTtlMs: 400,
    onEvent: (e) => events.push(e),
  });
  // The tick is between its ledger queries when close() runs: closing under it failed the tick's next query
  // ("connection disconnected"), which a quitting coordinator reported as an unhandled error.
  coordinator.kick();
  await coordinator.close();
  coordinator.kick();
  await Bun.sleep(50);
  expect(events.filter((e) => e.startsWith("tick failed"))).toEqual([]);
});
