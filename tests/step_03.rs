//! Stage 3's checks (`ws_tests::stages::STEP_03`), against the reference
//! stage: every rule of RFC 6455 framing, against an echo, and the case
//! groups of Autobahn|Testsuite in small; and what only the reference
//! does, below.

use std::time::{Duration, Instant};
use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_03,
    ws_tests::reference_checks![
        a_quiet_client_makes_the_next_one_wait,
        a_client_that_never_closes_is_let_go,
    ]
);

/// This stage serves one client at a time: while one client is connected,
/// even a quiet one, the next one waits. Stage 4 lifts this limit (see
/// `game_loop::a_quiet_client_does_not_make_the_next_one_wait`).
fn a_quiet_client_makes_the_next_one_wait(server: &Server) {
    let address = server.address;
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
fn a_client_that_never_closes_is_let_go(server: &Server) {
    let address = server.address;
    let mut stream = ws_handshake(address);
    send_raw(&mut stream, &[0x81, 0x00]); // unmasked: refused
    assert_eq!(read_close(&mut stream).close_code(), Some(1002));
    let started = Instant::now();
    let mut next = ws_handshake(address);
    let waited = started.elapsed();
    assert!(
        waited >= step_03::CLOSE_TIMEOUT - Duration::from_millis(200)
            && waited < step_03::CLOSE_TIMEOUT + Duration::from_secs(2),
        "the next client waited {waited:?}"
    );
    close_with(&mut next, 1000);
    drop(stream);
}
