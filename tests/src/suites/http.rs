//! HTTP/1.1 over real TCP: the echo of stage 1, every way a request can be
//! refused, and the deadline for a whole request. Every stage keeps these:
//! from stage 2 on, a request that is not an upgrade is still echoed.

use crate::*;
use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

/// What curl sends for `curl -d hello http://127.0.0.1:8080/x`.
const CURL_POST: &[u8] = b"POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\n\
    Accept: */*\r\nContent-Length: 5\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nhello";

/// Checks that `response` is a `200 OK` whose body is `request`, byte for
/// byte, with a `Content-Length` that says so.
#[track_caller]
fn expect_echo(response: &Response, request: &[u8]) {
    response.expect_status(200, "every request is answered with itself");
    let request = String::from_utf8_lossy(request);
    assert!(
        response.body == request,
        "the body must be the request, byte for byte:\n  sent {request:?}\n  body {:?}",
        response.body
    );
    let length = response.header("Content-Length");
    assert!(
        length == Some(response.body.len().to_string().as_str()),
        "`Content-Length` must be the length of the body, {}; it is {length:?}",
        response.body.len()
    );
}

pub fn echoes_a_post_like_curl_sends_it(server: &Server) {
    about(
        "RFC 9112, section 2 (message format)",
        "ch01-http-echo/what-curl-sends.md#what-curl-sends",
    );
    let response = exchange(server.address, CURL_POST);
    expect_echo(&Response::parse(&response), CURL_POST);
    let content_type = Response::parse(&response)
        .header("Content-Type")
        .unwrap_or("")
        .to_string();
    assert!(
        content_type.starts_with("text/plain"),
        "the echo is plain text: `Content-Type: text/plain; charset=utf-8`, not {content_type:?}"
    );
    keep(response);
}

/// TCP carries a stream of bytes, not messages: a request may arrive in
/// as many pieces as it has bytes.
pub fn request_arriving_one_byte_at_a_time(server: &Server) {
    about(
        "RFC 9112, section 2.2 (message parsing)",
        "ch01-http-echo/reading-a-request.md#a-read-returns-whatever-has-arrived",
    );
    let mut stream = connect(server.address);
    stream.set_nodelay(true).unwrap();
    let request = b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n";
    for byte in request {
        send_raw(&mut stream, &[*byte]);
        stream.flush().unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    expect_echo(&Response::parse(&read_response(&mut stream)), request);
}

pub fn header_names_are_case_insensitive(server: &Server) {
    about(
        "RFC 9110, section 5.1 (field names are case-insensitive)",
        "ch01-http-echo/parsing-the-head.md#header-names-ignore-case",
    );
    let request = b"POST / HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 2\r\n\r\nhi";
    expect_echo(&http(server.address, request), request);
}

/// A client that sends its whole request and then closes its side (a
/// half-close: `shutdown(Write)`) still reads the whole answer, and so does
/// one whose request is refused.
pub fn a_client_that_half_closes_after_its_request_still_gets_the_answer(server: &Server) {
    about(
        "RFC 9293, section 3.6 (closing a connection)",
        "ch01-http-echo/answers-and-deadlines.md#the-response",
    );
    let request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = exchange_half_closed(server.address, request);
    expect_echo(&Response::parse(&response), request);
    let response = exchange_half_closed(server.address, b"hello, is this a web server?\r\n\r\n");
    Response::parse(&response).expect_status(400, "a request that is not HTTP is refused");
}

pub fn not_http_gets_400(server: &Server) {
    about(
        "RFC 9112, section 3 (the request line)",
        "ch01-http-echo/answers-and-deadlines.md#every-refusal-is-an-answer",
    );
    let response = exchange(server.address, b"hello, is this a web server?\r\n\r\n");
    Response::parse(&response).expect_status(400, "a request that is not HTTP is refused");
    keep(response);
}

pub fn huge_headers_get_431(server: &Server) {
    about(
        "RFC 6585, section 5 (431 Request Header Fields Too Large)",
        "ch01-http-echo/answers-and-deadlines.md#every-refusal-is-an-answer",
    );
    let request = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    http(server.address, request.as_bytes())
        .expect_status(431, "a head over 8 KiB is refused before it is all read");
}

pub fn huge_body_gets_413_before_it_is_sent(server: &Server) {
    about(
        "RFC 9110, section 15.5.14 (413 Content Too Large)",
        "ch01-http-echo/the-body.md#where-the-body-ends",
    );
    // The server decides from Content-Length alone; we never send the body.
    http(
        server.address,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
    )
    .expect_status(
        413,
        "a Content-Length over 64 KiB is refused from the header",
    );
}

pub fn chunked_body_gets_501(server: &Server) {
    about(
        "RFC 9112, section 6.1 (Transfer-Encoding)",
        "ch01-http-echo/the-body.md#where-the-body-ends",
    );
    http(
        server.address,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    )
    .expect_status(501, "a chunked body is not supported");
}

/// Each request is refused with a status and a body that names what was
/// wrong, the same in every stage. (The snapshot holds the reference's
/// words; any server must refuse with the same status.)
pub fn ambiguous_or_invalid_heads_are_refused_and_say_why(server: &Server) {
    about(
        "RFC 9112, section 6.3 (message body length) and 3.2 (Host)",
        "ch01-http-echo/parsing-the-head.md#parsing-the-head",
    );
    let address = server.address;
    let host_line = format!("Host: {address}\r\n");
    let upgrade_without_host = upgrade_request(address).replace(&host_line, "");
    let cases: &[(&str, &[u8], u16)] = &[
        ("no Host", b"GET /x HTTP/1.1\r\n\r\n", 400),
        (
            "an upgrade without Host",
            upgrade_without_host.as_bytes(),
            400,
        ),
        (
            "two Hosts",
            b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        (
            "lengths that disagree",
            b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            400,
        ),
        (
            "chunked and a length",
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\nhello",
            400,
        ),
        (
            "chunked",
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            501,
        ),
        (
            "gzip, and no chunked after it",
            b"POST /x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\nhello",
            400,
        ),
        (
            "chunked in HTTP/1.0",
            b"POST /x HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            400,
        ),
        (
            "NUL in a value",
            b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n",
            400,
        ),
        (
            "ESC in a value",
            b"GET /x HTTP/1.1\r\nHost: x\r\nX-A: \x1b[2J\r\n\r\n",
            400,
        ),
    ];
    let mut outcomes = Vec::new();
    for (name, request, status) in cases {
        let response = exchange(address, request);
        Response::parse(&response).expect_status(*status, name);
        let body = response.lines().last().unwrap_or("");
        outcomes.push(format!("{name}: {} | {body}", status_line(&response)));
    }
    keep(outcomes.join("\n"));
}

/// HTTP/1.0 came before `Host`, so a request without one is answered.
pub fn an_http_1_0_request_needs_no_host(server: &Server) {
    about(
        "RFC 9112, section 3.2 (Host)",
        "ch01-http-echo/parsing-the-head.md#parsing-the-head",
    );
    let request = b"GET /old HTTP/1.0\r\n\r\n";
    expect_echo(&http(server.address, request), request);
}

/// Two `Content-Length`s that agree leave no doubt about where the body
/// ends: they count as one.
pub fn the_same_content_length_twice_is_one(server: &Server) {
    about(
        "RFC 9112, section 6.3 (message body length)",
        "ch01-http-echo/the-body.md#where-the-body-ends",
    );
    let request =
        b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\nhi";
    expect_echo(&http(server.address, request), request);
}

/// A tab, and text beyond ASCII, are fine in a value.
pub fn a_tab_and_non_ascii_text_in_a_value_are_fine(server: &Server) {
    about(
        "RFC 9110, section 5.5 (field values)",
        "ch01-http-echo/parsing-the-head.md#parsing-the-head",
    );
    let request = "GET /x HTTP/1.1\r\nHost: x\r\nX-A: a\tb é\r\n\r\n";
    expect_echo(
        &http(server.address, request.as_bytes()),
        request.as_bytes(),
    );
}

/// A client that sends half a request and then nothing: the server hangs
/// up on it at the request's deadline (stages 1 to 3, which serve one
/// client at a time, serve the next one then; stage 4 on, at once).
pub fn a_silent_client_does_not_block_the_next_one_forever(server: &Server) {
    about(
        "RFC 9112, section 9.5 (closing an idle connection)",
        "ch01-http-echo/answers-and-deadlines.md#a-deadline-not-a-timeout",
    );
    let deadline = server.request_timeout();
    let mut quiet = connect(server.address);
    send_raw(&mut quiet, b"GET / HTTP/1.1\r\n");
    thread::sleep(Duration::from_millis(100)); // let the server pick it up first

    let started = Instant::now();
    let wait = deadline + Duration::from_secs(2);
    let request = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = exchange_waiting(server.address, request, wait);
    expect_echo(&Response::parse(&response), request);
    let waited = started.elapsed();
    assert!(
        waited <= wait,
        "the second client waited {waited:?}: more than the request deadline ({deadline:?})"
    );
    // The quiet client was hung up on, without an answer.
    quiet.set_read_timeout(Some(wait)).unwrap();
    let (ended, got) = read_until_dropped(&mut quiet);
    assert!(
        ended,
        "the server never closed the connection of the client that did not finish its \
         request: it must hang up on it at the request's deadline ({deadline:?}). (A game \
         loop that is done with a client must also remove it: dropping it is what closes \
         its socket.)"
    );
    assert!(
        got == 0,
        "a client that never finished its request gets no answer: it is hung up on; got {got} bytes"
    );
}

/// A client that sends one byte every 500 ms: each read succeeds, the
/// request never ends. The deadline is for the whole request, not for each
/// read, so the server hangs up on it all the same.
pub fn a_trickling_client_is_cut_off_at_the_deadline(server: &Server) {
    about(
        "RFC 9112, section 9.5 (closing an idle connection)",
        "ch01-http-echo/answers-and-deadlines.md#a-deadline-not-a-timeout",
    );
    let deadline = server.request_timeout();
    let mut slow = connect(server.address);
    let started = Instant::now();
    let mut writer = slow.try_clone().unwrap();
    let trickle = thread::spawn(move || {
        let _ = writer.write_all(b"GET / HTTP/1.1\r\n");
        for _ in 0..40 {
            thread::sleep(Duration::from_millis(500));
            if writer.write_all(b"X").is_err() {
                break;
            }
        }
    });
    slow.set_read_timeout(Some(deadline + Duration::from_secs(2)))
        .unwrap();
    let answer = read_to_close(&mut slow);
    assert!(
        answer.is_empty(),
        "a client that never finished its request gets no answer: it is hung up on; got {answer:?}"
    );
    let waited = started.elapsed();
    assert!(
        waited < deadline + Duration::from_secs(2),
        "hung up after {waited:?}: the deadline is {deadline:?} for the whole request"
    );
    drop(trickle);
}
