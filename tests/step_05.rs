//! Stage 5's checks (`ws_tests::stages::STEP_05`), against the reference
//! stage: the JSON chat protocol, names, join and leave notices, and the
//! game loop's promises for clients that joined; and what only the
//! reference does, below.

use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_05,
    ws_tests::reference_checks![the_page_is_stage_5s]
);

/// The page says which stage serves it.
fn the_page_is_stage_5s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 5: a chat with names</title>"));
}
