//! Stage 4's checks (`ws_tests::stages::STEP_04`), against the reference
//! stage: the group chat and the promises of the game loop, and with one
//! client, every rule of stage 3 again (the broadcast is an echo); and what
//! only the reference does, below.

use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_04,
    ws_tests::reference_checks![the_page_is_stage_4s]
);

/// The page says which stage serves it.
fn the_page_is_stage_4s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 4: group chat</title>"));
}
