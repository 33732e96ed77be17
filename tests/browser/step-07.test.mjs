// Stage 7 in a real browser: the same chat as stages 5 and 6 (chat.mjs), served by
// a loop that epoll(7) tells which sockets are ready.
// Run with: tests/browser/run.sh step-07

import { chatTests } from "./chat.mjs";

chatTests("step-07", "Stage 7: a chat with names");
