//! Stage 6's checks (`ws_tests::stages::STEP_06`), against the reference
//! stage: the chat of stage 5, served by a loop that waits in poll(2), so
//! the checks of stage 5, and one that an idle server answers at once; and
//! what only the reference does, below.

use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_06,
    ws_tests::reference_checks![the_page_is_stage_6s]
);

/// The page says which stage serves it.
fn the_page_is_stage_6s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 6: a chat with names</title>"));
}
