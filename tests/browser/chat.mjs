// The chat page in a real browser, for every stage that serves it (5 and
// 6): two people pick names and chat; join and leave notices appear; a taken
// name is refused and another can be picked; a name that is HTML shows up as
// text and runs no script; a lost connection is said so. Each stage's test
// file calls `chatTests` with what is particular to it.

import { test } from "node:test";
import assert from "node:assert/strict";
import * as lib from "./lib.mjs";

/** Opens the page (of the server at `url`) and joins the chat as `name`. */
export async function join(page, name, title, url = lib.serverUrl()) {
  await page.goto(url);
  assert.equal(await page.title(), title);
  await lib.waitForText(page, "#status", "Pick a name");
  await page.fill("#name", name);
  await page.click("#join");
}

/** Types `text` into the chat's input and presses Send. */
export async function say(page, text) {
  await page.fill("#text", text);
  await page.click("#send");
}

/** The lines of the message list, as the reader sees them. */
async function lines(page) {
  return page.locator("#messages li").allTextContents();
}

const XSS_NAME = "<img src=x onerror=alert(1)>";

/**
 * Registers the chat's tests, for the stage `step` (as in "step-05") whose
 * page has the title `title`.
 */
export function chatTests(step, title) {
  // One Chromium for all the tests of this file, started before the first.
  const chromium = lib.chromiumForTheseTests();

  test("two people join, chat both ways, and see each other leave", { timeout: 60_000 }, async () => {
    const tabs = await lib.openPages(chromium(), 3);
    const [ann, bob, mallory] = tabs.map((tab) => tab.page);

    await join(ann, "ann", title);
    await lib.waitForText(ann, "#status", "You are ann");
    await join(bob, "bob", title);
    await lib.waitForText(bob, "#status", "You are bob");
    await lib.waitForText(ann, "#messages", "bob joined.");
    assert.deepEqual(await bob.locator("#users li").allTextContents(), ["ann", "bob (you)"]);

    await say(ann, "Hello bob!");
    await say(bob, "Hi ann, <b>this</b> stays text é😀");
    for (const page of [ann, bob]) {
      await lib.waitForText(page, "#messages", "bob: Hi ann, <b>this</b> stays text é😀");
    }
    assert.deepEqual(await lines(bob), [
      "You joined as bob.",
      "ann: Hello bob!",
      "bob: Hi ann, <b>this</b> stays text é😀",
    ]);

    // A third person tries a taken name, in other letters, and is asked again;
    // then joins under a name that is HTML.
    await join(mallory, "ANN", title);
    await lib.waitForText(mallory, "#name-error", 'the name "ANN" is taken');
    await mallory.fill("#name", XSS_NAME);
    await mallory.click("#join");
    await lib.waitForText(mallory, "#status", `You are ${XSS_NAME}`);
    for (const page of [ann, bob]) {
      await lib.waitForText(page, "#messages", `${XSS_NAME} joined.`);
      await lib.waitForText(page, "#users", XSS_NAME);
    }
    await say(mallory, XSS_NAME);
    for (const page of [ann, bob, mallory]) {
      await lib.waitForText(page, "#messages", `${XSS_NAME}: ${XSS_NAME}`);
      // The markup stayed text: no element was made of it, no script ran.
      assert.equal(await page.locator("#messages img, #users img, #messages b").count(), 0);
    }

    // Mallory closes the page: the others see the leave notice.
    await mallory.close();
    for (const page of [ann, bob]) {
      await lib.waitForText(page, "#messages", `${XSS_NAME} left.`);
      assert.equal(await page.locator("#users li").count(), 2);
    }

    for (const tab of tabs) {
      lib.assertNoDialogs(tab);
      lib.assertClean(tab);
    }
    await lib.screenshot(bob, `${step}-chat`);
  });

  test("the page says clearly when the connection is lost", { timeout: 30_000 }, async () => {
    const [tab] = await lib.openPages(chromium(), 1);
    await join(tab.page, "dora", title);
    await lib.waitForText(tab.page, "#status", "You are dora");
    // A message over the chat's size limit makes the server close with 1009.
    await tab.page.fill("#text", "x".repeat(70_000));
    await tab.page.click("#send");
    await lib.waitForText(tab.page, "#status", "Connection lost (close code 1009");
    assert.equal(await tab.page.locator("#text").isDisabled(), true);
    lib.assertNoDialogs(tab);
  });
}
