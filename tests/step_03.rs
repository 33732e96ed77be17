//! Stage 3 over real TCP: every rule of RFC 6455 framing (in `websocket.rs`,
//! shared with the later stages), and what is particular to this stage.
//!
//! `step_03_conformance.rs` goes through the case groups of Autobahn|Testsuite
//! the same way; `websocket.rs` is organised by rule.

use std::net::SocketAddr;
use std::time::Duration;
use step_03 as stage;
use ws_tests::*;

fn server() -> SocketAddr {
    start_server(stage::serve)
}

#[path = "websocket.rs"]
mod websocket;

#[path = "http.rs"]
mod http;

/// This stage serves one client at a time: while one client is connected,
/// even a quiet one, the next one waits. Stage 4 lifts this limit.
#[test]
fn a_quiet_client_makes_the_next_one_wait() {
    let address = server();
    let mut first = ws_handshake(address);
    let mut second = connect(address);
    send_raw(&mut second, upgrade_request(address).as_bytes());
    expect_silence(&mut second, Duration::from_millis(300));
    close_with(&mut first, 1000);
    check_101(&read_http_head(&mut second));
    close_with(&mut second, 1000);
}

/// When the client never closes its side, the server stops waiting after
/// `CLOSE_TIMEOUT` and serves the next client.
#[test]
fn a_client_that_never_closes_is_let_go() {
    let address = server();
    let mut stream = ws_handshake(address);
    send_raw(&mut stream, &[0x81, 0x00]); // unmasked: refused
    assert_eq!(read_close(&mut stream).close_code(), Some(1002));
    let started = std::time::Instant::now();
    let mut next = ws_handshake(address);
    let waited = started.elapsed();
    assert!(
        waited >= stage::CLOSE_TIMEOUT - Duration::from_millis(200)
            && waited < stage::CLOSE_TIMEOUT + Duration::from_secs(2),
        "the next client waited {waited:?}"
    );
    close_with(&mut next, 1000);
    drop(stream);
}
