// Stage 4 in a real browser: two people, each in a browser of their own,
// open the chat page, and whatever one sends, both receive, shown as text.
// Run with: tests/browser/run.sh step-04

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

/** The lines of the page's log that say what it received, in order. */
async function received(page) {
  const log = await page.locator("#log").textContent();
  return log.split("\n").filter((line) => line.startsWith("received: "));
}

test("two pages chat: what either sends, both receive, as text", { timeout: 40_000 }, async (t) => {
  const url = lib.serverUrl();
  const wsUrl = url.replace(/^http:/, "ws:") + "/";
  // Two contexts: two people on two computers, not two tabs of one.
  const tabs = await lib.openPages(chromium(), 2);
  const [ann, bob] = tabs.map((tab) => tab.page);
  const messages = tabs.map((tab) => lib.recordMessages(tab.page));
  const handshakes = [];
  for (const { page } of tabs) handshakes.push(await lib.recordHandshakes(page));

  for (const page of [ann, bob]) {
    await page.goto(url);
    assert.equal(await page.title(), "Stage 4: group chat");
  }
  // Both are in the chat before anyone speaks: each page says "open" once its
  // handshake is done, and the server has done two.
  for (const page of [ann, bob]) await lib.waitForText(page, "#log", "open: type a message");
  for (const recorded of handshakes) {
    assert.equal(recorded.length, 1, "one WebSocket handshake per page");
    assert.equal(recorded[0].url, wsUrl);
    assert.equal(recorded[0].status, 101);
  }

  // Ann speaks: both pages receive it, Ann's own too (the sender is in the chat).
  const hello = "Hello from Ann!";
  await send(ann, hello);
  for (const page of [ann, bob]) await lib.waitForText(page, "#log", `received: ${hello}`);

  // Bob answers, with markup that must stay text: no element, no script.
  const answer = "Hi Ann, <b>bold</b> <img src=x onerror=alert(1)> é€😀";
  await send(bob, answer);
  for (const page of [ann, bob]) await lib.waitForText(page, "#log", `received: ${answer}`);

  const expected = [`received: ${hello}`, `received: ${answer}`];
  for (const page of [ann, bob]) {
    assert.deepEqual(await received(page), expected);
    assert.equal(await page.locator("#log b, #log img").count(), 0, "markup in a message became an element");
  }
  // What went over each page's socket.
  assert.deepEqual(
    messages[0].map(({ direction, payload }) => [direction, payload]),
    [["sent", hello], ["received", hello], ["received", answer]],
  );
  assert.deepEqual(
    messages[1].map(({ direction, payload }) => [direction, payload]),
    [["received", hello], ["sent", answer], ["received", answer]],
  );

  // What the server saw: two handshakes, then each message once.
  await lib.waitForServerLine(/: text of 15 bytes "Hello from Ann!"$/);
  const answerBytes = Buffer.byteLength(answer);
  await lib.waitForServerLine(new RegExp(`: text of ${answerBytes} bytes "Hi Ann, <b>bold</b>`));
  const handshakesDone = lib.serverLog().split("\n").filter((line) => line.endsWith("handshake done; from now on it speaks WebSocket"));
  assert.equal(handshakesDone.length, 2, "the server saw two WebSocket handshakes");

  for (const [i, page] of [ann, bob].entries()) {
    const file = await lib.screenshot(page, `step-04-${["ann", "bob"][i]}`);
    t.diagnostic(`screenshot: ${file}`);
  }

  // Ann leaves with a clean close; Bob stays, and can still talk to himself.
  const closed = await ann.evaluate(
    () =>
      new Promise((resolve) => {
        ws.addEventListener("close", (event) => resolve({ code: event.code, wasClean: event.wasClean }));
        ws.close(1000, "bye");
      }),
  );
  assert.deepEqual(closed, { code: 1000, wasClean: true });
  await lib.waitForServerLine(/: close 1000 "bye" -> close$/);
  await send(bob, "anyone?");
  await lib.waitForText(bob, "#log", "received: anyone?");

  for (const tab of tabs) lib.assertClean(tab);
});
