// Stage 6 in a real browser: the same chat as stage 5 (chat.mjs), served by
// a loop that sleeps in poll(2).
// Run with: tests/browser/run.sh step-06

import { chatTests } from "./chat.mjs";

chatTests("step-06", "Stage 6: a chat with names");
