// Stage 5 in a real browser: the chat's tests, in chat.mjs.
// Run with: tests/browser/run.sh step-05

import { chatTests } from "./chat.mjs";

chatTests("step-05", "Stage 5: a chat with names");
