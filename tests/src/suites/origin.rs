//! Stage 8's `Origin` check, over real TCP: an upgrade from a page of
//! another site gets `403 Forbidden` and no WebSocket; one from the server's
//! own pages (`http://` or `https://`, then the `Host` the client asked
//! for), from an origin the server was told to allow (`--allow-origin`),
//! or from no page at all (no `Origin`: curl, a program) gets its 101.
//!
//! Why: a browser lets a page on any site open a WebSocket to any server,
//! with its visitor's cookies; only `Origin`, which a page cannot change,
//! says whose page it is (cross-site WebSocket hijacking, RFC 6455 section
//! 10.2).

use crate::*;
use std::net::SocketAddr;

/// An upgrade request with `Host: host` and, if given, `Origin: origin`.
fn upgrade(host: &str, origin: Option<&str>) -> String {
    let origin = origin.map_or(String::new(), |origin| format!("Origin: {origin}\r\n"));
    format!(
        "GET / HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n{origin}\r\n"
    )
}

/// Sends the upgrade, and checks that it gets a 101 and a WebSocket that
/// works: a ping gets its pong.
#[track_caller]
fn expect_accepted(address: SocketAddr, host: &str, origin: Option<&str>) {
    let mut stream = connect(address);
    send_raw(&mut stream, upgrade(host, origin).as_bytes());
    let head = read_http_head(&mut stream);
    let status = status_line(&head).to_string();
    assert!(
        status.starts_with("HTTP/1.1 101"),
        "an upgrade with Host {host:?} and {} must be accepted; got `{status}`",
        match origin {
            Some(origin) => format!("Origin {origin:?}"),
            None => "no Origin".to_string(),
        }
    );
    check_101(&head);
    send_frame(&mut stream, true, PING, b"origin");
    let pong = read_frame(&mut stream);
    assert!(
        pong.opcode == PONG && pong.payload == b"origin",
        "after the 101, a ping gets its pong; got {pong:?}"
    );
    close_with(&mut stream, 1000);
}

/// An upgrade from a page of another site gets 403, and no WebSocket:
/// nothing follows the answer but the end of the stream. Origins that
/// merely look like the server's (another port, the server's address as
/// the start of another name, an allowed origin with more after it, a
/// sandboxed page's `null`) are other sites too.
pub fn a_page_from_another_origin_gets_403(server: &Server) {
    about(
        "RFC 6455, section 4.2.2 (Origin) and 10.2",
        "ch08-production/origin.md#the-cases",
    );
    let address = server.address;
    let host = address.to_string();
    let other_port = format!("http://{}:{}", address.ip(), address.port() ^ 1);
    let cases = [
        ("another site", "http://evil.example".to_string()),
        (
            "the server's address, then more",
            format!("http://{host}.evil.example"),
        ),
        ("the server's address, another port", other_port),
        (
            "an allowed origin, then more",
            format!("{}.evil.example", server.allowed_origin()),
        ),
        ("a sandboxed page", "null".to_string()),
    ];
    let mut kept = Vec::new();
    for (what, origin) in &cases {
        let mut stream = connect(address);
        send_raw(&mut stream, upgrade(&host, Some(origin)).as_bytes());
        let response = Response::parse(&read_response(&mut stream));
        response.expect_status(
            403,
            &format!("a page from {origin} may not open a WebSocket here"),
        );
        assert!(
            !response
                .header("Upgrade")
                .is_some_and(|value| value.eq_ignore_ascii_case("websocket")),
            "a 403 upgrades nothing: no `Upgrade: websocket`"
        );
        expect_end_of_stream(&mut stream);
        kept.push(format!("{what}: {}", response.status_line));
    }
    keep(kept.join("\n"));
}

/// A page the server itself served may connect: its origin is the scheme
/// and the `Host` the browser asked for, whatever name that is.
pub fn a_page_from_the_server_itself_gets_101(server: &Server) {
    about(
        "RFC 6455, section 4.2.2 (Origin)",
        "ch08-production/origin.md#the-cases",
    );
    let address = server.address;
    let host = address.to_string();
    expect_accepted(address, &host, Some(&format!("http://{host}")));
    let by_name = format!("localhost:{}", address.port());
    expect_accepted(address, &by_name, Some(&format!("http://{by_name}")));
    // Behind a proxy that speaks TLS, the page's origin is https.
    expect_accepted(address, &host, Some(&format!("https://{host}")));
}

/// A page from an origin the server was told to allow (`--allow-origin`)
/// may connect.
pub fn a_page_from_an_allowed_origin_gets_101(server: &Server) {
    about(
        "RFC 6455, section 4.2.2 (Origin)",
        "ch08-production/origin.md#the-cases",
    );
    let address = server.address;
    expect_accepted(address, &address.to_string(), Some(server.allowed_origin()));
}

/// A request without `Origin` comes from no browser page (curl, a program,
/// a test): it carries nobody's cookies by surprise, and is let in.
pub fn a_request_without_origin_gets_101(server: &Server) {
    about(
        "RFC 6455, section 4.2.2 (Origin)",
        "ch08-production/origin.md#the-cases",
    );
    let address = server.address;
    expect_accepted(address, &address.to_string(), None);
}
