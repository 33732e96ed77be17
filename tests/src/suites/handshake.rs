//! The opening handshake over real TCP (RFC 6455, section 4), and every way
//! it is refused; and the HTTP that a stage with a page still speaks.

use crate::*;
use std::net::SocketAddr;

/// The example request of RFC 6455, section 1.3, without its `Origin`: a
/// server may refuse pages of other sites (chapter 2's first exercise), and
/// a request without one, as curl sends it, must still be accepted.
const UPGRADE: &str = "GET /chat HTTP/1.1\r\n\
    Host: server.example.com\r\n\
    Upgrade: websocket\r\n\
    Connection: Upgrade\r\n\
    Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n\r\n";

/// Sends an upgrade request and returns the answer: the head of a `101`
/// (the connection closes when the check is done with it), or the whole of
/// a refusal, after which the server hangs up.
#[track_caller]
fn upgrade_with(address: SocketAddr, request: &str) -> String {
    let mut stream = connect(address);
    send_raw(&mut stream, request.as_bytes());
    read_http_answer(&mut stream)
}

/// The answer to an upgrade: a `101`'s head (frames may follow), or a
/// whole refusal.
#[track_caller]
fn read_http_answer(stream: &mut Conn) -> String {
    read_response(stream)
}

pub fn rfc_6455_handshake(server: &Server) {
    about(
        "RFC 6455, section 4.2.2 (sending the server's opening handshake)",
        "ch02-handshake/the-request.md#the-handshake-in-a-picture",
    );
    let response = upgrade_with(server.address, UPGRADE);
    check_101(&response);
    keep(response);
}

/// The accept key is computed from the client's key, every time: a server
/// that answered every key with the RFC's example would fail here. (The
/// pair is the example of Wikipedia's article on WebSocket.)
pub fn any_key_gets_its_own_accept(server: &Server) {
    about(
        "RFC 6455, section 4.2.2, item 5.4 (Sec-WebSocket-Accept)",
        "ch02-handshake/the-accept-key.md#the-accept-key",
    );
    let request = UPGRADE.replace(RFC_KEY, "x3JJHMbDL1EzLkh9GBhXDw==");
    check_101_with(
        &upgrade_with(server.address, &request),
        "HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
    );
}

/// Firefox sends `Connection: keep-alive, Upgrade`: `Connection` is a list
/// of tokens, and `upgrade` must be one of them, in any case.
pub fn firefox_sends_keep_alive_upgrade(server: &Server) {
    about(
        "RFC 6455, section 4.2.1, item 4 (Connection: a list that includes Upgrade)",
        "ch02-handshake/the-request.md#tokens-and-the-firefox-mistake",
    );
    let request = UPGRADE.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade");
    check_101(&upgrade_with(server.address, &request));
    let request = UPGRADE.replace("Connection: Upgrade", "Connection: upgrade");
    check_101(&upgrade_with(server.address, &request));
}

/// A masked ping "Hello" (RFC 6455, section 5.7, as a client sends it) in
/// the same write as the request: the server must still read exactly one
/// request and answer 101. (Stage 3's checks also check that frames that
/// come with the request are then answered.)
pub fn a_frame_in_the_same_write_as_the_request_does_not_spoil_the_handshake(server: &Server) {
    about(
        "RFC 6455, section 4.2.1 (reading the client's opening handshake)",
        "ch02-handshake/after-the-101.md#after-the-101",
    );
    let mut bytes = UPGRADE.as_bytes().to_vec();
    bytes.extend_from_slice(&[
        0x89, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ]);
    let mut stream = connect(server.address);
    send_raw(&mut stream, &bytes);
    check_101(&read_http_head(&mut stream));
}

pub fn wrong_version_gets_426_with_the_version_we_speak(server: &Server) {
    about(
        "RFC 6455, section 4.4 (supporting multiple versions)",
        "ch02-handshake/the-request.md#saying-no-426-or-400",
    );
    let response = upgrade_with(
        server.address,
        &UPGRADE.replace("Version: 13", "Version: 8"),
    );
    let parsed = Response::parse(&response);
    parsed.expect_status(426, "a version we do not speak: Upgrade Required");
    assert!(
        parsed.header("Sec-WebSocket-Version") == Some("13"),
        "a 426 says which version the server speaks: `Sec-WebSocket-Version: 13`; it says {:?}",
        parsed.header("Sec-WebSocket-Version")
    );
    keep(response);
}

pub fn missing_version_gets_426(server: &Server) {
    about(
        "RFC 6455, section 4.4 (supporting multiple versions)",
        "ch02-handshake/the-request.md#saying-no-426-or-400",
    );
    let response = upgrade_with(
        server.address,
        &UPGRADE.replace("Sec-WebSocket-Version: 13\r\n", ""),
    );
    Response::parse(&response).expect_status(426, "no version: Upgrade Required");
}

/// The snapshot holds the reference's reasons; any server must refuse each
/// with a 400.
pub fn every_other_refusal_is_a_400(server: &Server) {
    about(
        "RFC 6455, section 4.2.1 (the client's handshake) and 4.2.2 (refusing it)",
        "ch02-handshake/the-request.md#checking-the-request",
    );
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
    let mut outcomes = Vec::new();
    for (name, request) in &cases {
        let response = upgrade_with(server.address, request);
        Response::parse(&response).expect_status(400, name);
        let body = response.lines().last().unwrap_or("").to_string();
        outcomes.push(format!("{name}: {} | {body}", status_line(&response)));
    }
    keep(outcomes.join("\n"));
}

/// A refused upgrade is an HTTP answer; one that says `Connection: close`
/// is followed by the end of the connection, even for a client that keeps
/// its side open.
pub fn a_refused_upgrade_is_still_an_http_error(server: &Server) {
    about(
        "RFC 6455, section 4.2.2 (refusing the handshake); RFC 9112, section 9.6",
        "ch02-handshake/the-request.md#saying-no-426-or-400",
    );
    let address = server.address;
    let request = upgrade_request(address).replace("Version: 13", "Version: 8");
    let mut stream = connect(address);
    send_raw(&mut stream, request.as_bytes());
    let response = Response::parse(&read_response(&mut stream));
    response.expect_status(426, "a version we do not speak: Upgrade Required");
    if response
        .header("Connection")
        .is_some_and(|value| value.eq_ignore_ascii_case("close"))
    {
        let rest = read_to_close(&mut stream);
        assert!(
            rest.is_empty(),
            "after an answer that says `Connection: close`, nothing more: got {rest:?}"
        );
    }
}

/// A client that sends its whole upgrade request and then closes its side
/// still reads the whole refusal.
pub fn a_client_that_half_closes_after_a_refused_upgrade_still_gets_the_answer(server: &Server) {
    about(
        "RFC 9293, section 3.6 (closing a connection)",
        "ch02-handshake/the-request.md#saying-no-426-or-400",
    );
    let address = server.address;
    let key_line = format!("Sec-WebSocket-Key: {RFC_KEY}\r\n");
    let no_key = upgrade_request(address).replace(&key_line, "");
    let response = exchange_half_closed(address, no_key.as_bytes());
    Response::parse(&response).expect_status(400, "an upgrade without a key is refused");
}

/// A client that sends its upgrade request and then closes its side (it
/// will send no frame) still reads its `101`: the server must not take the
/// end of its stream for the end of everything it owes it.
pub fn a_client_that_half_closes_after_its_upgrade_still_gets_the_101(server: &Server) {
    about(
        "RFC 9293, section 3.6 (closing a connection)",
        "ch02-handshake/the-request.md#the-handshake-in-a-picture",
    );
    let address = server.address;
    let response = exchange_half_closed(address, upgrade_request(address).as_bytes());
    check_101(&response);
}

pub fn get_slash_serves_the_page(server: &Server) {
    about(
        "RFC 9110, section 9.3.1 (GET)",
        "ch02-handshake/after-the-101.md#the-page",
    );
    let response = http(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    response.expect_status(200, "`GET /` serves the page");
    assert!(
        response
            .header("Content-Type")
            .is_some_and(|value| value.starts_with("text/html")),
        "the page is HTML: `Content-Type: text/html; charset=utf-8`, not {:?}",
        response.header("Content-Type")
    );
    assert!(
        response.body.contains("new WebSocket("),
        "the page opens a WebSocket: its script calls `new WebSocket(...)`"
    );
}

pub fn other_requests_are_still_echoed(server: &Server) {
    about(
        "RFC 9112, section 2 (message format)",
        "ch02-handshake/after-the-101.md#the-page",
    );
    let request = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello";
    let response = http(server.address, request);
    response.expect_status(
        200,
        "a request that is not an upgrade is echoed, as in stage 1",
    );
    assert!(
        response.body == String::from_utf8_lossy(request),
        "the body must be the request, byte for byte; it is {:?}",
        response.body
    );
}
