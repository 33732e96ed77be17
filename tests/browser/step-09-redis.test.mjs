// Stage 9 in a real browser: two tabs on two servers (two step-09 processes
// with --redis, one redis-server) are one chat. Names are unique across the
// servers, and when Redis goes away each page says so.
// Run with: tests/browser/redis.sh (it starts Redis and both servers).

import { test } from "node:test";
import assert from "node:assert/strict";
import { join, say } from "./chat.mjs";
import * as lib from "./lib.mjs";

const TITLE = "Stage 9: a chat with names";

/** The second server's URL, from ./redis.sh. */
function secondServerUrl() {
  const url = process.env.SERVER_URL_B;
  if (!url) throw new Error("SERVER_URL_B is not set: run this test with tests/browser/redis.sh");
  return url;
}

const chromium = lib.chromiumForTheseTests();

test("two tabs on two servers chat, names are unique across them, and a lost Redis is said", { timeout: 60_000 }, async () => {
  const urlA = lib.serverUrl();
  const urlB = secondServerUrl();
  assert.notEqual(urlA, urlB, "two servers");
  const tabs = await lib.openPages(chromium(), 3);
  const [ann, bob, copycat] = tabs.map((tab) => tab.page);

  await join(ann, "ann", TITLE, urlA);
  await lib.waitForText(ann, "#status", "You are ann");
  await join(bob, "bob", TITLE, urlB);
  await lib.waitForText(bob, "#status", "You are bob");
  // Bob's welcome, from server B, lists Ann of server A (after B's own
  // users); Ann hears of Bob.
  const users = await bob.locator("#users li").allTextContents();
  assert.deepEqual(users.sort(), ["ann", "bob (you)"]);
  await lib.waitForText(ann, "#messages", "bob joined.");

  await say(ann, "Hello bob, from server A!");
  await say(bob, "Hi ann, from server B é😀");
  for (const page of [ann, bob]) {
    await lib.waitForText(page, "#messages", "bob: Hi ann, from server B é😀");
  }
  // Bob is server B's client: server A only heard of him, through Redis.
  assert.equal(lib.serverLog().includes('joined as "bob"'), false);
  for (const page of [ann, bob]) {
    assert.deepEqual(await page.locator("#messages li").allTextContents(), [
      ...(page === ann ? ["You joined as ann.", "bob joined."] : ["You joined as bob."]),
      "ann: Hello bob, from server A!",
      "bob: Hi ann, from server B é😀",
    ]);
  }

  // Ann's name, in other letters, on the other server: taken.
  await join(copycat, "ANN", TITLE, urlB);
  await lib.waitForText(copycat, "#name-error", 'the name "ANN" is taken');
  await copycat.close();

  // Ann closes her tab: Bob, on the other server, sees her leave.
  await ann.close();
  await lib.waitForText(bob, "#messages", "ann left.");
  assert.deepEqual(await bob.locator("#users li").allTextContents(), ["bob (you)"]);

  // Redis goes away: the page says so, and the chat goes on at this server.
  process.kill(Number(process.env.REDIS_PID), "SIGTERM");
  await lib.waitForText(bob, "#messages", "the other servers are out of reach");
  await say(bob, "still here");
  await lib.waitForText(bob, "#messages", "bob: still here");

  for (const tab of tabs) lib.assertClean(tab);
  await lib.screenshot(bob, "step-09-redis-chat");
});
