//! Stage 2's checks (`ws_tests::stages::STEP_02`), against the reference
//! stage: the opening handshake, and every way it is refused; and what only
//! the reference does, below.

use std::time::{Duration, Instant};
use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_02,
    ws_tests::reference_checks![an_upgraded_client_that_goes_quiet_is_let_go]
);

/// This stage serves one client at a time, and after the handshake only
/// shows what the client sends: so it hangs up after
/// `LISTEN_AFTER_UPGRADE`, to serve the next. (Not a promise the stages
/// after it keep: from stage 3 on, a WebSocket stays open.)
fn an_upgraded_client_that_goes_quiet_is_let_go(server: &Server) {
    let mut stream = connect(server.address);
    // Wait longer than the server listens, so that the server hangs up first.
    let patience = step_02::LISTEN_AFTER_UPGRADE + Duration::from_secs(5);
    stream.set_read_timeout(Some(patience)).unwrap();
    send_raw(&mut stream, upgrade_request(server.address).as_bytes());
    let started = Instant::now();
    let response = read_to_close(&mut stream);
    assert_eq!(status_line(&response), "HTTP/1.1 101 Switching Protocols");
    let waited = started.elapsed();
    assert!(
        waited >= step_02::LISTEN_AFTER_UPGRADE - Duration::from_millis(500)
            && waited <= step_02::LISTEN_AFTER_UPGRADE + Duration::from_secs(2),
        "hung up after {waited:?}"
    );
}
