#!/usr/bin/env bash
# The built book on a phone-sized screen, in headless Chromium:
#
#     mdbook build book && tests/browser/book.sh
#
# checks that no page of book/book is cut off at 390 px and that diagrams
# stay legible, and takes screenshots (into ARTIFACTS_DIR, default: a new
# temporary folder). Needs Node.js 20 or later, Chromium, and `npm ci` in
# tests/browser (see README.md there).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export BOOK_DIR="${BOOK_DIR:-$root/book/book}"
if [[ ! -f $BOOK_DIR/index.html ]]; then
    echo "error: no built book in $BOOK_DIR: run mdbook build book first" >&2
    exit 2
fi
export ARTIFACTS_DIR="${ARTIFACTS_DIR:-$(mktemp -d)}"
# lib.mjs reads where the server is, though this test needs none.
export SERVER_URL="file://$BOOK_DIR" SERVER_LOG=/dev/null
cd "$here"
node --test --test-reporter=spec --test-timeout=120000 book.test.mjs
echo "book: screenshots in $ARTIFACTS_DIR"
