// Helpers for the browser tests: start a headless Chromium, open pages that
// record what went wrong on them, and read what the server printed.
//
// The tests are started by ./run.sh STEP, which builds and starts the step's
// server and passes it in through two environment variables:
//   SERVER_URL     where the server listens, e.g. http://127.0.0.1:41234
//   SERVER_LOG     the file the server's output goes to
//   ARTIFACTS_DIR  (optional) where screenshots go; a new temporary folder if unset
//   CHROMIUM       (optional) the browser to drive; /usr/bin/chromium if unset

import { chromium } from "playwright-core";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import assert from "node:assert/strict";
import { before, after } from "node:test";

/** How long each kind of wait may take, so that a broken page fails a test instead of hanging it. */
export const TIMEOUT = {
  launch: 30_000, // start Chromium (each of the two tries launchChromium makes)
  action: 10_000, // load a page, wait for text, take a screenshot
  serverLog: 5_000, // wait for a line from the server
};

/** The URL of the step's server, from ./run.sh. */
export function serverUrl() {
  const url = process.env.SERVER_URL;
  if (!url) {
    throw new Error("SERVER_URL is not set: run these tests with tests/browser/run.sh STEP, which starts the server");
  }
  return url;
}

// Chromium as root in a container needs --no-sandbox. This machine has no
// internet: without the background-networking flags Chromium keeps trying
// (and failing) to reach Google's servers. Playwright passes most of these
// itself; we list them so that what the browser runs with is written here.
// Playwright also gives every launch a fresh, empty --user-data-dir
// (a new temporary folder, deleted on close), so no state leaks between runs.
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Starts a headless Chromium. Close it with `await browser.close()`.
 *
 * A browser that does not start in time is killed and started once more: the
 * first start on a freshly installed machine has been seen to hang past 15 s
 * (on a CI machine, once; the next start in the same run worked).
 * A second failure is the test's failure, with both errors in its message.
 *
 * Debian's /usr/bin/chromium may print "[: ...: unexpected operator" first:
 * its /etc/chromium.d/dev-shm compares findmnt's output, which is two lines
 * where /dev/shm is mounted twice. That is harmless, since Playwright passes
 * --disable-dev-shm-usage anyway.
 */
export async function launchChromium({
  executablePath = process.env.CHROMIUM || "/usr/bin/chromium",
  onRetry = console.error, // told why the first try failed
} = {}) {
  const options = {
    executablePath,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: TIMEOUT.launch,
  };
  try {
    return await chromium.launch(options);
  } catch (first) {
    onRetry(`Chromium did not start (${first.message.split("\n")[0]}); starting it once more`);
    try {
      return await chromium.launch(options);
    } catch (second) {
      throw new Error(`Chromium did not start, twice:\n1: ${first.message}\n2: ${second.message}`);
    }
  }
}

/**
 * Starts one Chromium before the first test of the calling file and closes
 * it after the last; returns a function that gives that browser.
 */
export function chromiumForTheseTests() {
  let browser;
  before(async () => {
    browser = await launchChromium();
  }, { timeout: 2 * TIMEOUT.launch + 5_000 });
  after(async () => {
    await browser?.close();
  }, { timeout: 10_000 });
  return () => browser;
}

/**
 * Opens `count` pages. By default each page gets a context of its own (its
 * own cookies and storage), like two people on two computers; with
 * `{ sharedContext: true }` they are tabs of one browser window instead.
 *
 * Each returned `tab` is `{ page, consoleErrors, pageErrors, dialogs }`: the
 * three arrays fill up as the page runs. A dialog (`alert`, `confirm`,
 * `prompt`, `beforeunload`) is recorded and dismissed at once, so a page that
 * calls `alert()` never blocks a test, and a test can check that none fired.
 */
export async function openPages(browser, count, { sharedContext = false } = {}) {
  const tabs = [];
  let context = null;
  for (let i = 0; i < count; i++) {
    if (!context || !sharedContext) {
      context = await browser.newContext();
      context.setDefaultTimeout(TIMEOUT.action);
      context.setDefaultNavigationTimeout(TIMEOUT.action);
    }
    tabs.push(watch(await context.newPage(), `page ${i + 1}`));
  }
  return tabs;
}

function watch(page, name) {
  const tab = { name, page, consoleErrors: [], pageErrors: [], dialogs: [] };
  page.on("console", (message) => {
    if (message.type() === "error") tab.consoleErrors.push(message.text());
  });
  // An exception nobody caught, in the page's own script.
  page.on("pageerror", (error) => tab.pageErrors.push(error.message));
  page.on("dialog", async (dialog) => {
    tab.dialogs.push({ type: dialog.type(), message: dialog.message() });
    await dialog.dismiss().catch(() => {}); // the page may be closing already
  });
  return tab;
}

/**
 * Fails unless the page threw nothing, logged no error (but those matching
 * one of `allowConsoleErrors`, a list of regular expressions) and opened no
 * dialog. Call it at the end of every test, for every tab.
 */
export function assertClean(tab, { allowConsoleErrors = [] } = {}) {
  assert.deepEqual(tab.pageErrors, [], `${tab.name}: uncaught exceptions in the page`);
  const unexpected = tab.consoleErrors.filter((text) => !allowConsoleErrors.some((pattern) => pattern.test(text)));
  assert.deepEqual(unexpected, [], `${tab.name}: errors in the browser console`);
  assertNoDialogs(tab);
}

/** Fails if the page opened any dialog; `alert(1)` from injected markup shows up here. */
export function assertNoDialogs(tab) {
  assert.deepEqual(tab.dialogs, [], `${tab.name}: the page opened a dialog (did injected script run?)`);
}

/**
 * Records every WebSocket handshake the page makes, as the browser's network
 * layer saw it: `{ url, status, statusText, headers }`. Call it before
 * `page.goto`. `status` is 101 for a handshake the server accepted.
 */
export async function recordHandshakes(page) {
  const handshakes = [];
  const urls = new Map();
  const cdp = await page.context().newCDPSession(page);
  cdp.on("Network.webSocketCreated", ({ requestId, url }) => urls.set(requestId, url));
  cdp.on("Network.webSocketHandshakeResponseReceived", ({ requestId, response }) => {
    handshakes.push({
      url: urls.get(requestId),
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  });
  await cdp.send("Network.enable");
  return handshakes;
}

/**
 * Records every message the page sends and receives over WebSockets, as
 * `{ url, direction: "sent" | "received", payload }`. Call it before `page.goto`.
 */
export function recordMessages(page) {
  const messages = [];
  page.on("websocket", (socket) => {
    const url = socket.url();
    socket.on("framesent", ({ payload }) => messages.push({ url, direction: "sent", payload: String(payload) }));
    socket.on("framereceived", ({ payload }) => messages.push({ url, direction: "received", payload: String(payload) }));
  });
  return messages;
}

/**
 * Waits until `text` shows up in `selector` (e.g. "#log") and returns the
 * element's whole text. If it does not in time, fails with what the element
 * shows instead.
 */
export async function waitForText(page, selector, text, timeout = TIMEOUT.action) {
  const element = page.locator(selector);
  try {
    await element.filter({ hasText: text }).waitFor({ timeout });
  } catch (error) {
    if (error.name !== "TimeoutError") throw error;
    const shown = await element.first().textContent({ timeout: 1_000 }).catch(() => "(no such element)");
    assert.fail(`waited ${timeout} ms for ${selector} to show ${JSON.stringify(text)}; it shows:\n${shown}`);
  }
  return element.textContent();
}

/** Saves a screenshot (of the whole page, unless `fullPage: false`) as ARTIFACTS_DIR/NAME.png and returns its path. */
export async function screenshot(page, name, { fullPage = true } = {}) {
  const file = path.join(artifactsDir(), `${name}.png`);
  await page.screenshot({ path: file, fullPage, timeout: TIMEOUT.action });
  return file;
}

let madeArtifactsDir = null;
function artifactsDir() {
  if (process.env.ARTIFACTS_DIR) {
    fs.mkdirSync(process.env.ARTIFACTS_DIR, { recursive: true });
    return process.env.ARTIFACTS_DIR;
  }
  madeArtifactsDir ??= fs.mkdtempSync(path.join(os.tmpdir(), "ws-browser-"));
  return madeArtifactsDir;
}

/** Everything the server has printed so far. */
export function serverLog() {
  const file = process.env.SERVER_LOG;
  if (!file) throw new Error("SERVER_LOG is not set: run these tests with tests/browser/run.sh STEP");
  return fs.readFileSync(file, "utf8");
}

/**
 * Waits until a line the server printed matches `pattern`, and returns the
 * match. Fails with the whole log if none does in time.
 */
export async function waitForServerLine(pattern, timeout = TIMEOUT.serverLog) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const log = serverLog();
    for (const line of log.split("\n")) {
      const match = line.match(pattern);
      if (match) return match;
    }
    if (Date.now() > deadline) {
      assert.fail(`the server printed no line matching ${pattern} within ${timeout} ms; it printed:\n${log}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
