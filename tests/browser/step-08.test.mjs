// Stage 8 in a real browser: the chat of stage 7 (chat.mjs), and what it
// takes to leave it running (production.mjs).
// Run with: tests/browser/run.sh step-08

import { productionTests } from "./production.mjs";

productionTests("step-08", "Stage 8: a chat with names");
