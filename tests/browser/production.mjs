// What it takes to leave the chat running, as a page sees it, for every
// stage from 8 on (run.sh starts them with a ping interval and an idle
// timeout of 1 s each, so that several pass during a test):
//
// - a quiet tab stays connected: the browser answers the server's pings
//   by itself, with no code in the page;
// - a page from another origin (another port) cannot open a WebSocket: the
//   server answers 403, the page sees the connection fail;
// - SIGTERM (what Ctrl-C, `kill` and a deploy send): every page is told
//   the server is going away (close code 1001), and the server exits 0.
//   This one stops the server, so it comes last.

import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { chatTests, join, say } from "./chat.mjs";
import * as lib from "./lib.mjs";

/** Joins the chat as `name`, and waits until the server has said so. */
async function joined(page, name, title) {
  await join(page, name, title);
  await lib.waitForText(page, "#status", `You are ${name}`);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Registers the chat's tests and these, for the stage `step` (as in
 * "step-08") whose page has the title `title`.
 */
export function productionTests(step, title) {
  chatTests(step, title);
  const chromium = lib.chromiumForTheseTests();

  test("a quiet tab stays connected: the browser answers the pings itself", { timeout: 60_000 }, async () => {
    const [quiet, other] = await lib.openPages(chromium(), 2);
    await joined(quiet.page, "quiet", title);
    await joined(other.page, "other", title);
    // Six seconds: three pings, each followed by the idle timeout, while the
    // page sends nothing at all. A client that did not answer would be gone
    // after two.
    await sleep(6_000);
    const log = lib.serverLog();
    assert.doesNotMatch(log, /sent nothing for/, "the server gave up on a tab");
    await say(quiet.page, "still here");
    for (const tab of [quiet, other]) {
      await lib.waitForText(tab.page, "#messages", "quiet: still here");
    }
    for (const tab of [quiet, other]) {
      lib.assertClean(tab);
      await tab.page.close();
    }
  });

  test("a page from another origin is refused with 403", { timeout: 60_000 }, async () => {
    // Another web server, on another port: another origin. Its page tries to
    // join the chat of ours, as a page on evil.example would.
    const target = new URL(lib.serverUrl());
    const page = `<!doctype html><title>elsewhere</title><script>
      const socket = new WebSocket("ws://${target.host}/");
      socket.onopen = () => { document.title = "opened"; };
      socket.onclose = (event) => { document.title = "closed " + event.code; };
    </script>`;
    const elsewhere = http.createServer((_, response) => {
      response.writeHead(200, { "Content-Type": "text/html" });
      response.end(page);
    });
    await new Promise((resolve) => elsewhere.listen(0, "127.0.0.1", resolve));
    try {
      const origin = `http://127.0.0.1:${elsewhere.address().port}`;
      const [tab] = await lib.openPages(chromium(), 1);
      await tab.page.goto(origin);
      await tab.page.waitForFunction(() => document.title.startsWith("closed"), null, {
        timeout: lib.TIMEOUT.action,
      });
      // A refused handshake is a failed connection to the page: 1006, and
      // nothing else it can read (browsers hide the status on purpose).
      assert.equal(await tab.page.title(), "closed 1006");
      await lib.waitForServerLine(new RegExp(`upgrade refused: origin ${origin} not allowed`));
      await lib.waitForServerLine(/answered 403 Forbidden/);
      // Chromium reports the failed handshake in the console, as it should.
      lib.assertClean(tab, { allowConsoleErrors: [/WebSocket connection to .* failed/] });
      await tab.page.close();
    } finally {
      elsewhere.close();
    }
  });

  test("SIGTERM: every page is told the server is going away (1001)", { timeout: 60_000 }, async () => {
    const pid = Number(process.env.SERVER_PID);
    assert.ok(pid > 0, "SERVER_PID is not set: run these tests with tests/browser/run.sh");
    const tabs = await lib.openPages(chromium(), 2);
    await joined(tabs[0].page, "sam", title);
    await joined(tabs[1].page, "tess", title);
    await say(tabs[0].page, "last words");
    await lib.waitForText(tabs[1].page, "#messages", "sam: last words");
    process.kill(pid, "SIGTERM");
    for (const tab of tabs) {
      await lib.waitForText(tab.page, "#status", "Connection lost (close code 1001, the server is shutting down)");
    }
    await lib.waitForServerLine(/shutting down: closing \d+ connections/);
    await lib.waitForServerLine(/every connection is closed: exiting/);
    for (const tab of tabs) {
      lib.assertClean(tab);
      await tab.page.close();
    }
  });
}
