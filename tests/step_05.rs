//! Stage 5 over real TCP: the JSON chat protocol, and the game loop's
//! promises for clients that joined, in `chat.rs` (shared with the later
//! stages, which serve the same chat).

use std::net::SocketAddr;
use step_05 as stage;
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
fn the_page_is_stage_5s() {
    let response = exchange(server(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 5: a chat with names</title>"));
}
