// The book on a phone: every page of the built book (book/book, from
// `mdbook build book`) at 390 px wide, in headless Chromium. Nothing may be
// cut off: the page itself never scrolls sideways, and whatever is wider
// than the screen (a table, a code block, a diagram) scrolls in a box of its
// own; the text of every diagram is shown at least 10 px high.
//
// Run it with ./book.sh (after mdbook build book); BOOK_DIR says where the
// built book is.

import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import { test } from "node:test";
import { chromiumForTheseTests, screenshot } from "./lib.mjs";

const bookDir = process.env.BOOK_DIR;
const PHONE = { width: 390, height: 844 };
const SMALLEST_TEXT_PX = 10;

/** Every HTML page of the book but mdBook's own (print, 404, toc). */
function pages(dir, prefix = "") {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const relative = path.join(prefix, entry.name);
    if (entry.isDirectory()) {
      return ["css", "fonts", "FontAwesome", "images", "theme"].includes(entry.name)
        ? []
        : pages(path.join(dir, entry.name), relative);
    }
    const ownPages = ["print.html", "404.html", "toc.html"];
    return entry.name.endsWith(".html") && !ownPages.includes(relative) ? [relative] : [];
  });
}

/** The smallest font size an SVG file sets, in its own units. */
function smallestFontSize(svgPath) {
  const svg = fs.readFileSync(svgPath, "utf8");
  const sizes = [...svg.matchAll(/font-size(?:="|:\s*)([0-9.]+)/g)].map((m) => Number(m[1]));
  return sizes.length ? Math.min(...sizes) : Infinity;
}

const browser = chromiumForTheseTests();

test("every page of the book fits a phone", async () => {
  assert.ok(bookDir && fs.existsSync(path.join(bookDir, "index.html")), "BOOK_DIR must hold a built book");
  const context = await browser().newContext({ viewport: PHONE });
  const page = await context.newPage();
  const problems = [];
  let diagrams = 0;
  for (const name of pages(bookDir)) {
    await page.goto("file://" + path.join(bookDir, name));
    const found = await page.evaluate(() => {
      const problems = [];
      const root = document.scrollingElement;
      if (root.scrollWidth > window.innerWidth + 1) {
        problems.push(`the page is ${root.scrollWidth} px wide`);
      }
      for (const box of document.querySelectorAll("main table, main pre, main p:has(> img)")) {
        const style = getComputedStyle(box);
        if (box.scrollWidth > box.clientWidth + 1 && !["auto", "scroll"].includes(style.overflowX)) {
          problems.push(`a ${box.tagName.toLowerCase()} is cut off (${box.scrollWidth} px in ${box.clientWidth})`);
        }
      }
      const images = [...document.querySelectorAll("main img")].map((img) => ({
        src: img.getAttribute("src"),
        shown: img.getBoundingClientRect().width,
        natural: img.naturalWidth,
      }));
      return { problems, images };
    });
    problems.push(...found.problems.map((problem) => `${name}: ${problem}`));
    // (An image that is not displayed, 0 px wide, shows nothing to read.)
    for (const image of found.images.filter((image) => image.src.endsWith(".svg") && image.shown > 0)) {
      diagrams += 1;
      const file = path.join(bookDir, path.dirname(name), image.src);
      const textPx = smallestFontSize(file) * (image.shown / image.natural);
      if (textPx < SMALLEST_TEXT_PX) {
        problems.push(`${name}: ${image.src} shows text ${textPx.toFixed(1)} px high`);
      }
    }
  }
  assert.ok(diagrams > 0, "no diagram was found: has the book lost its images?");
  assert.deepEqual(problems, []);
  await context.close();
});

test("screenshots at 390 px: the introduction, a chapter 3 page, a diagram", async () => {
  const context = await browser().newContext({ viewport: PHONE });
  const page = await context.newPage();
  const withDiagram = pages(bookDir).find((name) =>
    fs.readFileSync(path.join(bookDir, name), "utf8").includes("frame-header.svg"),
  );
  const chapter3 = pages(bookDir).find((name) => name.startsWith("ch03"));
  for (const [name, file] of [["introduction", "introduction.html"], ["chapter-3", chapter3], ["diagram", withDiagram]]) {
    assert.ok(file, `no page for ${name}`);
    await page.goto("file://" + path.join(bookDir, file));
    if (name === "diagram") {
      await page.locator('main img[src$="frame-header.svg"]').first().scrollIntoViewIfNeeded();
    }
    await screenshot(page, `book-${name}`, { fullPage: false });
  }
  await context.close();
});
