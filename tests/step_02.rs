//! Stage 2 over real TCP: the opening handshake, and every way it is refused.

use insta::assert_snapshot;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};
use ws_tests::{connect, exchange, exchange_half_closed, read_to_close, start_server, status_line};

/// The example request of RFC 6455, section 1.3.
const UPGRADE: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Origin: http://example.com\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

fn server() -> SocketAddr {
    start_server(step_02::serve)
}

#[path = "http.rs"]
mod http;

/// Sends an upgrade request, closes our side, and returns the whole answer.
fn upgrade_with(request: &str) -> String {
    let mut stream = connect(server());
    stream.write_all(request.as_bytes()).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    read_to_close(&mut stream)
}

#[test]
fn rfc_6455_handshake() {
    assert_snapshot!(upgrade_with(UPGRADE));
}

#[test]
fn firefox_sends_keep_alive_upgrade() {
    let request = UPGRADE.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    let response = upgrade_with(&request);
    assert_eq!(status_line(&response), "HTTP/1.1 101 Switching Protocols");
}

#[test]
fn a_frame_in_the_same_write_as_the_request_does_not_spoil_the_handshake() {
    // A masked "Hello" frame (RFC 6455, section 5.7) in the same write as the
    // request: the server must still read exactly one request and answer 101.
    // (Stage 3's tests check that those frame bytes are then answered too.)
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    let mut stream = connect(server());
    stream.write_all(&bytes).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    let response = read_to_close(&mut stream);
    assert_eq!(status_line(&response), "HTTP/1.1 101 Switching Protocols");
}

#[test]
fn an_upgraded_client_that_goes_quiet_is_let_go() {
    let mut stream = connect(server());
    // Wait longer than the server listens, so that the server hangs up first.
    let patience = step_02::LISTEN_AFTER_UPGRADE + Duration::from_secs(5);
    stream.set_read_timeout(Some(patience)).unwrap();
    stream.write_all(UPGRADE.as_bytes()).unwrap();
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

#[test]
fn wrong_version_gets_426_with_the_version_we_speak() {
    let response = upgrade_with(&UPGRADE.replace("Version: 13", "Version: 8"));
    assert_snapshot!(response);
}

#[test]
fn missing_version_gets_426() {
    let response = upgrade_with(&UPGRADE.replace("Sec-WebSocket-Version: 13\r\n", ""));
    assert_eq!(status_line(&response), "HTTP/1.1 426 Upgrade Required");
}

#[test]
fn every_other_refusal_is_a_400() {
    let cases = [
        ("POST", UPGRADE.replacen("GET", "POST", 1)),
        ("HTTP/1.0", UPGRADE.replace("HTTP/1.1", "HTTP/1.0")),
        (
            "no Connection: upgrade",
            UPGRADE.replace("Connection: Upgrade\r\n", ""),
        ),
        (
            "no key",
            UPGRADE.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
        ),
        (
            "key not base64",
            UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "!!!!"),
        ),
        (
            "key too short",
            UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ="),
        ),
    ];
    let outcomes: Vec<String> = cases
        .iter()
        .map(|(name, request)| {
            let response = upgrade_with(request);
            let body = response.lines().last().unwrap_or("").to_string();
            format!("{name}: {} | {body}", status_line(&response))
        })
        .collect();
    assert_snapshot!(outcomes.join("\n"));
}

#[test]
fn plain_get_slash_serves_the_page() {
    let response = exchange(server(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    assert!(response.contains("Content-Type: text/html; charset=utf-8"));
    assert!(response.contains("new WebSocket("));
}

#[test]
fn other_requests_are_still_echoed() {
    let response = exchange(
        server(),
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    assert!(response.ends_with("POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"));
}

/// A client that sends its whole request and then closes its side (a
/// half-close: `shutdown(Write)`) still reads the whole answer. (Every
/// upgrade above, refused or not, is sent that way, by `upgrade_with`.)
#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = exchange_half_closed(server(), request);
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
    assert!(response.ends_with("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
}
