// Stage 2 in a real browser: the page at / opens a WebSocket, the server
// answers 101 Switching Protocols, and the page sends one message, which the
// server prints in hex. Run with: tests/browser/run.sh step-02

import { test } from "node:test";
import assert from "node:assert/strict";
import * as lib from "./lib.mjs";

// One Chromium for all the tests of this file, started before the first.
const chromium = lib.chromiumForTheseTests();

test("the page's WebSocket is accepted with 101 and sends its message", { timeout: 20_000 }, async (t) => {
  const url = lib.serverUrl();
  const wsUrl = url.replace(/^http:/, "ws:") + "/";
  const [tab] = await lib.openPages(chromium(), 1);
  const { page } = tab;
  const handshakes = await lib.recordHandshakes(page);
  const messages = lib.recordMessages(page);

  await page.goto(url);
  assert.equal(await page.title(), "Stage 2: the handshake");
  const log = await lib.waitForText(page, "#log", 'sent "Hello, server!"');

  // What the page says, line by line, in this order.
  assert.deepEqual(log.trimEnd().split("\n"), [
    `connecting to ${wsUrl} ...`,
    "open: the server answered 101 Switching Protocols",
    `sent "Hello, server!" (look at the server's terminal)`,
  ]);
  // What the browser's network layer saw: one handshake, answered with 101.
  assert.equal(handshakes.length, 1, "one WebSocket handshake");
  assert.equal(handshakes[0].url, wsUrl);
  assert.equal(handshakes[0].status, 101);
  const upgrade = Object.entries(handshakes[0].headers).find(([name]) => name.toLowerCase() === "upgrade");
  assert.equal(upgrade?.[1].toLowerCase(), "websocket");
  // What went over the socket: one message out, nothing back (stage 2 cannot answer yet).
  assert.deepEqual(messages, [{ url: wsUrl, direction: "sent", payload: "Hello, server!" }]);

  // What the server saw: the handshake, then one masked text frame.
  await lib.waitForServerLine(/handshake done/);
  const [, hex] = await lib.waitForServerLine(/: \d+ bytes: ((?:[0-9a-f]{2} ?)+)$/);
  const bytes = hex.trim().split(" ").map((pair) => parseInt(pair, 16));
  assert.equal(bytes[0], 0x81, "FIN + text frame");
  assert.equal(bytes[1], 0x80 | 14, "masked, 14 bytes of payload");
  const mask = bytes.slice(2, 6);
  const payload = bytes.slice(6).map((byte, i) => byte ^ mask[i % 4]);
  assert.equal(Buffer.from(payload).toString("utf8"), "Hello, server!");

  const file = await lib.screenshot(page, "step-02");
  t.diagnostic(`screenshot: ${file}`);
  lib.assertClean(tab);
});
