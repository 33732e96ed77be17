//! Stage 7's checks (`ws_tests::stages::STEP_07`) against the same loop
//! waiting with stage 6's poll(2), as it does on macOS and the BSDs, where
//! there is no epoll: so that the fallback is not untested code.

// ANCHOR: two_runners
ws_tests::main!(
    ws_tests::stages::STEP_07_WITH_POLL,
    ws_tests::reference_checks![]
);
// ANCHOR_END: two_runners
