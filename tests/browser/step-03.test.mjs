// Stage 3 in a real browser: the page's messages come back, whatever their
// size or characters, are shown as text, and the browser's close gets a clean
// close in answer. Run with: tests/browser/run.sh step-03

import { test } from "node:test";
import assert from "node:assert/strict";
import * as lib from "./lib.mjs";

// One Chromium for all the tests of this file, started before the first.
const chromium = lib.chromiumForTheseTests();

/** Types `text` into the page's input and presses Send. */
async function send(page, text) {
  await page.fill("#text", text);
  await page.click("button");
}

test("what the page sends comes back, and the close is clean", { timeout: 30_000 }, async (t) => {
  const url = lib.serverUrl();
  const wsUrl = url.replace(/^http:/, "ws:") + "/";
  const [tab] = await lib.openPages(chromium(), 1);
  const { page } = tab;
  const handshakes = await lib.recordHandshakes(page);
  const messages = lib.recordMessages(page);

  await page.goto(url);
  assert.equal(await page.title(), "Stage 3: echo");
  await lib.waitForText(page, "#log", "open: type a message");

  // Text with characters of 1 to 4 bytes in UTF-8; markup that must stay text;
  // 70,000 characters, whose length needs the 64-bit form.
  const texts = ["Hello, echo!", "κόσμε, ä€😀", "<img src=x onerror=alert(1)>", "x".repeat(70_000)];
  for (const text of texts) {
    await send(page, text);
    const shown = text.length > 200 ? `${text.slice(0, 200)}... (${text.length} characters)` : text;
    await lib.waitForText(page, "#log", `received: ${shown}`);
  }
  assert.deepEqual(
    messages.map(({ direction, payload }) => [direction, payload]),
    texts.flatMap((text) => [["sent", text], ["received", text]]),
  );
  assert.equal(await page.locator("#log img").count(), 0, "markup in a message became an element");
  assert.equal(handshakes.length, 1, "one WebSocket handshake");
  assert.equal(handshakes[0].url, wsUrl);
  assert.equal(handshakes[0].status, 101);

  // What the server saw.
  await lib.waitForServerLine(/: text of 12 bytes "Hello, echo!" -> echoed$/);
  await lib.waitForServerLine(/: text of 70000 bytes "x{40}"\.\.\. -> echoed$/);

  // The browser starts the closing handshake; the server answers with the
  // same code, and the browser reports a clean close.
  const closed = await page.evaluate(
    () =>
      new Promise((resolve) => {
        ws.addEventListener("close", (event) => resolve({ code: event.code, wasClean: event.wasClean }));
        ws.close(1000, "bye");
      }),
  );
  assert.deepEqual(closed, { code: 1000, wasClean: true });
  await lib.waitForText(page, "#log", "closed: code 1000");
  await lib.waitForServerLine(/: close 1000 "bye" -> close$/);
  await lib.waitForServerLine(/: disconnected$/);

  const file = await lib.screenshot(page, "step-03");
  t.diagnostic(`screenshot: ${file}`);
  lib.assertClean(tab);
});
