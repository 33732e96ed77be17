//! The rules of HTTP/1.1 that keep a request from being read two ways, over
//! real TCP: what every stage refuses, with an answer that says why, and
//! what it still accepts.
//!
//! Stages 1 to 3 read a request with a blocking `read_request`, stages 4 to
//! 6 parse it as it arrives with `parse_request`: two readers, one set of
//! rules. So this file is a module of each stage's test file (`step_01.rs`
//! to `step_06.rs`), which says how `server()` starts that stage.

use super::server;
use insta::assert_snapshot;
use ws_tests::*;

/// Each request is refused with a status and a body that names what was
/// wrong, the same in every stage.
#[test]
fn ambiguous_or_invalid_heads_are_refused_and_say_why() {
    let address = server();
    let host_line = format!("Host: {address}\r\n");
    let upgrade_without_host = upgrade_request(address).replace(&host_line, "");
    let cases: &[(&str, &[u8])] = &[
        ("no Host", b"GET /x HTTP/1.1\r\n\r\n"),
        ("an upgrade without Host", upgrade_without_host.as_bytes()),
        (
            "two Hosts",
            b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        ),
        (
            "lengths that disagree",
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
        ),
        (
            "chunked and a length",
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
        ),
        (
            "chunked",
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "gzip, and no chunked after it",
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        ),
        (
            "chunked in HTTP/1.0",
            b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        ),
        (
            "NUL in a value",
            b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
        ),
        (
            "ESC in a value",
            b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: \x1b[2J\r\n\r\n",
        ),
    ];
    let outcomes: Vec<String> = cases
        .iter()
        .map(|(name, request)| {
            let response = exchange(address, request);
            let body = response.lines().last().unwrap_or("");
            format!("{name}: {} | {body}", status_line(&response))
        })
        .collect();
    assert_snapshot!(outcomes.join("\n"));
}

/// HTTP/1.0 came before `Host`, so a request without one is answered.
#[test]
fn an_http_1_0_request_needs_no_host() {
    let response = exchange(server(), b"GET /old HTTP/1.0\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
    assert!(
        response.ends_with("GET /old HTTP/1.0\r\n\r\n"),
        "{response:?}"
    );
}

/// Two `Content-Length`s that agree leave no doubt about where the body
/// ends: they count as one.
#[test]
fn the_same_content_length_twice_is_one() {
    let request =
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi";
    let response = exchange(server(), request);
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
    assert!(
        response.ends_with("content-length: 2\r\n\r\nhi"),
        "{response:?}"
    );
}

/// A tab, and text beyond ASCII, are fine in a value.
#[test]
fn a_tab_and_non_ascii_text_in_a_value_are_fine() {
    let request = "GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\tb é\r\n\r\n";
    let response = exchange(server(), request.as_bytes());
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
    assert!(response.ends_with("X-A: a\tb é\r\n\r\n"), "{response:?}");
}
