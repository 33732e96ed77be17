//! The WebSocket opening handshake (RFC 6455, section 4).
//!
//! A WebSocket starts life as an ordinary HTTP request that asks to switch
//! protocols:
//!
//! ```text
//! GET /chat HTTP/1.1
//! Host: 127.0.0.1:8080
//! Upgrade: websocket
//! Connection: Upgrade
//! Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==
//! Sec-WebSocket-Version: 13
//! ```
//!
//! and the server agrees with `101 Switching Protocols`, proving that it
//! understood by hashing the client's key:
//!
//! ```text
//! HTTP/1.1 101 Switching Protocols
//! Upgrade: websocket
//! Connection: Upgrade
//! Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
//! ```
//!
//! After that response the same TCP connection carries WebSocket frames.

use crate::http::{Request, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

// ANCHOR: constants
/// The fixed string every server appends to the client's key (RFC 6455, section 1.3).
const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The only protocol version RFC 6455 defines.
const VERSION: &str = "13";
// ANCHOR_END: constants

// ANCHOR: accept_key
/// `Sec-WebSocket-Accept` = base64(sha1(key + GUID)).
///
/// The key is used as the text the client sent: it is not decoded first.
fn accept_key(client_key: &str) -> String {
    let mut sha1 = Sha1::new();
    sha1.update(client_key.as_bytes());
    sha1.update(GUID.as_bytes());
    BASE64.encode(sha1.finalize())
}
// ANCHOR_END: accept_key

// ANCHOR: has_token
/// Whether a comma-separated header value such as `keep-alive, Upgrade`
/// contains `token`, ignoring ASCII case. Comparing the whole value with
/// `== "Upgrade"` would turn Firefox away: it sends `keep-alive, Upgrade`.
fn has_token(header_value: Option<&str>, token: &str) -> bool {
    header_value
        .unwrap_or("")
        .split(',')
        .any(|item| item.trim().eq_ignore_ascii_case(token))
}
// ANCHOR_END: has_token

// ANCHOR: is_upgrade_request
/// Whether the client asks to turn this connection into a WebSocket.
pub fn is_upgrade_request(request: &Request) -> bool {
    has_token(request.header("Upgrade"), "websocket")
}
// ANCHOR_END: is_upgrade_request

// ANCHOR: handshake_error
/// Why an upgrade request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// The method is not GET, or the version is older than HTTP/1.1.
    NotGetHttp11,
    /// `Connection` does not list the `upgrade` token.
    NoConnectionUpgrade,
    /// `Sec-WebSocket-Version` is missing or not 13.
    UnsupportedVersion,
    /// `Sec-WebSocket-Key` is missing, or is not base64 of 16 bytes.
    BadKey,
}

impl HandshakeError {
    /// A version we do not speak gets `426 Upgrade Required` with the version
    /// we do speak, so the client can retry; everything else is a `400`.
    pub fn response(self) -> Response {
        let explanation = match self {
            HandshakeError::NotGetHttp11 => "a WebSocket upgrade must be a GET over HTTP/1.1",
            HandshakeError::NoConnectionUpgrade => "the Connection header must contain \"upgrade\"",
            HandshakeError::UnsupportedVersion => "only Sec-WebSocket-Version 13 is supported",
            HandshakeError::BadKey => "Sec-WebSocket-Key must be base64 of 16 bytes",
        };
        let response = if self == HandshakeError::UnsupportedVersion {
            Response::new(426, "Upgrade Required").with_header("Sec-WebSocket-Version", VERSION)
        } else {
            Response::new(400, "Bad Request")
        };
        let body = format!("{} {}: {explanation}\n", response.status, response.reason);
        response
            .with_header("Connection", "close")
            .with_body("text/plain; charset=utf-8", body)
    }
}
// ANCHOR_END: handshake_error

// ANCHOR: check_upgrade
/// Checks an upgrade request (one for which [`is_upgrade_request`] is true)
/// and returns the `101 Switching Protocols` response that accepts it.
pub fn accept(request: &Request) -> Result<Response, HandshakeError> {
    if request.method != "GET" || request.version != "HTTP/1.1" {
        return Err(HandshakeError::NotGetHttp11);
    }
    if !has_token(request.header("Connection"), "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if request.header("Sec-WebSocket-Version") != Some(VERSION) {
        return Err(HandshakeError::UnsupportedVersion);
    }
    let key = request.header("Sec-WebSocket-Key").unwrap_or("");
    // The key is 16 random bytes in base64: 24 characters ending in "==".
    let decoded = BASE64.decode(key).map_err(|_| HandshakeError::BadKey)?;
    if decoded.len() != 16 {
        return Err(HandshakeError::BadKey);
    }
    Ok(Response::new(101, "Switching Protocols")
        .with_header("Upgrade", "websocket")
        .with_header("Connection", "Upgrade")
        .with_header("Sec-WebSocket-Accept", &accept_key(key)))
}
// ANCHOR_END: check_upgrade

// ANCHOR: origin
/// Whether the page that asks for this WebSocket may have one.
///
/// A browser lets a page on any site open a WebSocket to any server, and
/// sends the visitor's cookies along: unless the server looks, a page on
/// `evil.example` can join the chat as its visitor (cross-site WebSocket
/// hijacking). But the browser always says which site the page came from,
/// in `Origin`, and a page cannot change it. So: a page from the server
/// itself (the scheme, then the `Host` the browser connected to) may
/// connect, and so may one from an origin on the command line. A request
/// without `Origin` is not from a browser page at all (`curl`, a program):
/// it cannot carry anyone's cookies by surprise, and is let in.
pub fn origin_is_allowed(request: &Request, allowed: &[String]) -> bool {
    let Some(origin) = request.header("Origin") else {
        return true;
    };
    if allowed
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    let host = request.header("Host").unwrap_or_default();
    let site = origin
        .strip_prefix("http://")
        .or_else(|| origin.strip_prefix("https://"));
    site.is_some_and(|site| !host.is_empty() && site.eq_ignore_ascii_case(host))
}

/// `403 Forbidden`, for a page from an origin that is not allowed.
pub fn forbidden_origin(origin: &str) -> Response {
    let body = format!("403 Forbidden: pages from {origin} may not connect\n");
    Response::new(403, "Forbidden")
        .with_header("Connection", "close")
        .with_body("text/plain; charset=utf-8", body)
}
// ANCHOR_END: origin

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::parse_head;
    use insta::assert_snapshot;

    // ANCHOR: test_rfc_6455_accept_key
    /// The example handshake of RFC 6455, section 1.3.
    const RFC_REQUEST: &str = "GET /chat HTTP/1.1\r\n\
        Host: server.example.com\r\n\
        Upgrade: websocket\r\n\
        Connection: Upgrade\r\n\
        Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\n\
        Sec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Version: 13\r\n\r\n";

    #[test]
    fn rfc_6455_accept_key() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
    // ANCHOR_END: test_rfc_6455_accept_key

    #[test]
    fn rfc_6455_handshake_response() {
        let request = parse_head(RFC_REQUEST).unwrap();
        assert!(is_upgrade_request(&request));
        let response = accept(&request).unwrap();
        assert_snapshot!(String::from_utf8(response.to_bytes()).unwrap());
    }

    // ANCHOR: test_firefox_connection_header
    #[test]
    fn firefox_connection_header() {
        let request = parse_head(
            &RFC_REQUEST.replace("Connection: Upgrade", "Connection: keep-alive, Upgrade"),
        )
        .unwrap();
        assert!(accept(&request).is_ok());
    }
    // ANCHOR_END: test_firefox_connection_header

    #[test]
    fn header_names_and_tokens_ignore_case() {
        let request = parse_head(
            "GET / HTTP/1.1\r\nhost: x\r\nUPGRADE: WebSocket\r\nconnection: UPGRADE\r\n\
             sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nSEC-WEBSOCKET-VERSION: 13\r\n\r\n",
        )
        .unwrap();
        assert!(is_upgrade_request(&request));
        assert!(accept(&request).is_ok());
    }

    #[test]
    fn plain_requests_are_not_upgrades() {
        for head in [
            "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n\r\n",
        ] {
            assert!(!is_upgrade_request(&parse_head(head).unwrap()), "{head}");
        }
    }

    #[test]
    fn rejections() {
        let cases = [
            ("POST", RFC_REQUEST.replacen("GET", "POST", 1)),
            ("HTTP/1.0", RFC_REQUEST.replace("HTTP/1.1", "HTTP/1.0")),
            (
                "no Connection",
                RFC_REQUEST.replace("Connection: Upgrade\r\n", ""),
            ),
            (
                "Connection: close",
                RFC_REQUEST.replace("Connection: Upgrade", "Connection: close"),
            ),
            (
                "no version",
                RFC_REQUEST.replace("Sec-WebSocket-Version: 13\r\n", ""),
            ),
            (
                "version 8",
                RFC_REQUEST.replace("Version: 13", "Version: 8"),
            ),
            (
                "no key",
                RFC_REQUEST.replace("Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n", ""),
            ),
            (
                "key not base64",
                RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "not base64!"),
            ),
            (
                "key of 15 bytes",
                RFC_REQUEST.replace("dGhlIHNhbXBsZSBub25jZQ==", "dGhlIHNhbXBsZSBub25j"),
            ),
        ];
        let outcomes: Vec<String> = cases
            .iter()
            .map(|(name, head)| format!("{name}: {:?}", accept(&parse_head(head).unwrap())))
            .collect();
        assert_snapshot!(outcomes.join("\n"));
    }

    // ANCHOR: origin_test
    #[test]
    fn a_page_may_connect_from_the_server_itself_or_an_allowed_origin() {
        let allowed = ["https://chat.example".to_string()];
        let cases = [
            (None, "127.0.0.1:8080", true), // not a browser
            (Some("http://127.0.0.1:8080"), "127.0.0.1:8080", true),
            (Some("https://LOCALHOST:8080"), "localhost:8080", true),
            (Some("https://chat.example"), "127.0.0.1:8080", true),
            (Some("http://evil.example"), "127.0.0.1:8080", false),
            (Some("http://127.0.0.1:9999"), "127.0.0.1:8080", false), // another port
            (Some("http://chat.example"), "127.0.0.1:8080", false),   // another scheme
            (Some("null"), "127.0.0.1:8080", false),                  // a sandboxed page, a file
            (Some("http://"), "", false),
        ];
        for (origin, host, expected) in cases {
            let mut head = format!("GET / HTTP/1.1\r\nHost: {host}\r\n");
            if let Some(origin) = origin {
                head.push_str(&format!("Origin: {origin}\r\n"));
            }
            let request = parse_head(&format!("{head}\r\n")).unwrap();
            assert_eq!(
                origin_is_allowed(&request, &allowed),
                expected,
                "{origin:?} on {host}"
            );
        }
    }
    // ANCHOR_END: origin_test

    #[test]
    fn version_rejection_says_which_version_we_speak() {
        let response = HandshakeError::UnsupportedVersion.response();
        assert_snapshot!(String::from_utf8(response.to_bytes()).unwrap());
    }
}
