//! Stage 1's checks (`ws_tests::stages::STEP_01`), against the reference
//! stage: the echo, and every way a request can be refused. The checks are
//! in `tests/src/suites/`; the grader runs the same list against any server.

ws_tests::main!(ws_tests::stages::STEP_01, &[]);
