import { expect, test } from "bun:test";
import { connect } from "node:net";
import { IndexStore } from "../../src/engine/store/index-store.ts";
import { indexedPhotos, photo, serve } from "./server-harness.ts";

test("stopping the server answers an ingest in flight, and the index reopens with its image and no recovery", async () => {
  const fx = await indexedPhotos("graceful-stop", ["orange.jpg", "apple.jpg"]);
  const server = await serve(fx);
  const image = photo("rocket.jpg");
  const head = `--XX\r\nContent-Disposition: form-data; name="files"; filename="rocket.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`;
  const body = Buffer.concat([Buffer.from(head), image, Buffer.from("\r\n--XX--\r\n")]);
  const socket = connect(server.port, "127.0.0.1");
  let response = "";
  const answered = new Promise<void>((done) => {
    socket.on("data", (d) => (response += d.toString()));
    socket.on("close", () => done());
    socket.on("error", () => done());
  });
  await new Promise<void>((open) => socket.once("connect", () => open()));
  socket.write(
    `POST /api/ingest HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: multipart/form-data; boundary=XX\r\n` +
      `Content-Length: ${body.length}\r\n\r\n`,
  );
  socket.write(body.subarray(0, 1000));
  await Bun.sleep(200); // the request is in flight, its body still arriving, when the stop begins
  const stopped = server.stop();
  await Bun.sleep(100);
  socket.write(body.subarray(1000));
  await answered;
  await stopped;

  expect(response).toStartWith("HTTP/1.1 200");
  const report = JSON.parse(response.slice(response.indexOf("\r\n\r\n") + 4));
  expect(report).toMatchObject({ status: "ok", processed: 1 });
  const store = await IndexStore.open(fx.index, { readOnly: true });
  try {
    expect(store.recovery).toBe("none");
    expect(store.vectorCount).toBe(3);
  } finally {
    await store.close();
  }
});
