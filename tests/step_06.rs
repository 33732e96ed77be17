//! Stage 6 over real TCP: the chat of stage 5, served by a loop that waits
//! in poll(2) instead of sleeping. It must keep every promise of stage 5,
//! so the tests are those of stage 5, in `chat.rs`.

use std::net::SocketAddr;
use step_06 as stage;
use ws_tests::*;

fn server() -> SocketAddr {
    start_server(stage::serve)
}

#[path = "chat.rs"]
mod chat;

#[path = "http.rs"]
mod http;

/// The page says which stage serves it.
#[test]
fn the_page_is_stage_6s() {
    let response = exchange(server(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 6: a chat with names</title>"));
}
