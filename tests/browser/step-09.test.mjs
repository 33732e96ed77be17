// Stage 9 in a real browser, without --redis: one process, exactly stage 8
// (production.mjs). Two servers joined by Redis: step-09-redis.test.mjs,
// run by redis.sh.
// Run with: tests/browser/run.sh step-09

import { productionTests } from "./production.mjs";

productionTests("step-09", "Stage 9: a chat with names");
