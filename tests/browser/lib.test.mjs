// Tests of the helpers themselves, on pages made in the test: no server needed.
// They prove the detectors can fire, so that a step's test saying "no dialog,
// no error" means something. ./run.sh runs them before every step's tests.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as lib from "./lib.mjs";

// One Chromium for all the tests of this file, started before the first.
const chromium = lib.chromiumForTheseTests();

test("a browser that cannot start fails with the errors of both tries", { timeout: 20_000 }, async () => {
  const retries = [];
  const launch = lib.launchChromium({
    executablePath: "/nonexistent/chromium",
    onRetry: (line) => retries.push(line),
  });
  await assert.rejects(launch, (error) => {
    assert.match(error.message, /Chromium did not start, twice:\n1: .*nonexistent[^]*\n2: .*nonexistent/);
    return true;
  });
  assert.equal(retries.length, 1, "one retry, said once");
  assert.match(retries[0], /^Chromium did not start \(.*nonexistent.*\); starting it once more$/);
});

test("injected markup that runs alert() is caught as a dialog", { timeout: 20_000 }, async () => {
  const [tab] = await lib.openPages(chromium(), 1);
  await tab.page.setContent(`<p id="name"><img src=x onerror=alert(1)></p>`);
  await waitUntil(() => tab.dialogs.length > 0);
  assert.deepEqual(tab.dialogs, [{ type: "alert", message: "1" }]);
  assert.throws(() => lib.assertNoDialogs(tab), /opened a dialog/);
});

test("the same markup set as text runs nothing", { timeout: 20_000 }, async () => {
  const [tab] = await lib.openPages(chromium(), 1);
  await tab.page.setContent(`<p id="name"></p>`);
  await tab.page.evaluate(() => {
    document.getElementById("name").textContent = "<img src=x onerror=alert(1)>";
  });
  await tab.page.waitForTimeout(500); // give a wrongly inserted image time to fail
  assert.equal(await tab.page.locator("#name").textContent(), "<img src=x onerror=alert(1)>");
  lib.assertClean(tab);
});

test("uncaught exceptions and console errors are caught", { timeout: 20_000 }, async () => {
  const [tab] = await lib.openPages(chromium(), 1);
  await tab.page.setContent(`<script>console.error("something broke"); throw new Error("boom");</script>`);
  await waitUntil(() => tab.pageErrors.length > 0 && tab.consoleErrors.length > 0);
  assert.deepEqual(tab.pageErrors, ["boom"]);
  assert.deepEqual(tab.consoleErrors, ["something broke"]);
  assert.throws(() => lib.assertClean(tab), /uncaught exceptions/);
  tab.pageErrors.length = 0;
  assert.throws(() => lib.assertClean(tab), /console/);
  lib.assertClean(tab, { allowConsoleErrors: [/something broke/] });
});

test("pages get separate contexts unless asked to share one", { timeout: 20_000 }, async () => {
  const [a, b] = await lib.openPages(chromium(), 2);
  assert.notEqual(a.page.context(), b.page.context());
  const [c, d] = await lib.openPages(chromium(), 2, { sharedContext: true });
  assert.equal(c.page.context(), d.page.context());
});

async function waitUntil(condition, timeout = 5_000) {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`condition not met within ${timeout} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
