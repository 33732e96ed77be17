//! Stage 1 over real TCP: the echo, and every way a request can be refused
//! (the rules that keep a request from being read two ways are in `http.rs`,
//! which every stage's tests share).

use insta::assert_snapshot;
use std::io::Write;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};
use ws_tests::{connect, exchange, exchange_half_closed, read_to_close, start_server, status_line};

fn server() -> SocketAddr {
    start_server(step_01::serve)
}

#[path = "http.rs"]
mod http;

#[test]
fn echoes_a_post_like_curl_sends_it() {
    let server = start_server(step_01::serve);
    let response = exchange(
        server,
        b"POST /x HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUser-Agent: curl/7.88.1\r\nAccept: */*\r\n\
          Content-Length: 5\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\nhello",
    );
    assert_snapshot!(response);
}

#[test]
fn request_arriving_one_byte_at_a_time() {
    let server = start_server(step_01::serve);
    let mut stream = connect(server);
    for byte in b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n" {
        stream.write_all(&[*byte]).unwrap();
        stream.flush().unwrap();
        thread::sleep(Duration::from_millis(2));
    }
    let response = read_to_close(&mut stream);
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    assert!(response.ends_with("GET /slow HTTP/1.1\r\nHost: x\r\n\r\n"));
}

/// A client that sends its whole request and then closes its side (a
/// half-close: `shutdown(Write)`) still reads the whole answer, and so does
/// one whose request is refused.
#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    let server = start_server(step_01::serve);
    let request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = exchange_half_closed(server, request);
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
    assert!(response.ends_with("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    let response = exchange_half_closed(server, b"hello, is this a web server?\r\n\r\n");
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 400 Bad Request",
        "{response:?}"
    );
}

#[test]
fn not_http_gets_400() {
    let server = start_server(step_01::serve);
    assert_snapshot!(exchange(server, b"hello, is this a web server?\r\n\r\n"));
}

#[test]
fn huge_headers_get_431() {
    let server = start_server(step_01::serve);
    let request = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    let response = exchange(server, request.as_bytes());
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 431 Request Header Fields Too Large"
    );
}

#[test]
fn huge_body_gets_413_before_it_is_sent() {
    let server = start_server(step_01::serve);
    // The server decides from Content-Length alone; we never send the body.
    let response = exchange(
        server,
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n",
    );
    assert_eq!(status_line(&response), "HTTP/1.1 413 Content Too Large");
}

#[test]
fn chunked_body_gets_501() {
    let server = start_server(step_01::serve);
    let response = exchange(
        server,
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    );
    assert_eq!(status_line(&response), "HTTP/1.1 501 Not Implemented");
}

#[test]
fn header_names_are_case_insensitive() {
    let server = start_server(step_01::serve);
    let response = exchange(
        server,
        b"POST / HTTP/1.1\r\nHost: x\r\ncontent-LENGTH: 2\r\n\r\nhi",
    );
    assert!(
        response.ends_with("content-LENGTH: 2\r\n\r\nhi"),
        "{response}"
    );
}

#[test]
fn a_silent_client_does_not_block_the_next_one_forever() {
    let server = start_server(step_01::serve);
    // This client sends half a request and then says nothing more.
    let mut quiet = connect(server);
    quiet.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    thread::sleep(Duration::from_millis(100)); // let the server pick it up first

    let started = Instant::now();
    let response = exchange(server, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    let waited = started.elapsed();
    assert!(
        waited <= step_01::REQUEST_TIMEOUT + Duration::from_secs(2),
        "the second client waited {waited:?}"
    );
    // The quiet client was hung up on, without an answer.
    assert_eq!(read_to_close(&mut quiet), "");
}

#[test]
fn a_trickling_client_is_cut_off_at_the_deadline() {
    let server = start_server(step_01::serve);
    let mut slow = connect(server);
    let started = Instant::now();
    // One header byte every 500 ms: each read succeeds, the request never ends.
    let writer = {
        let mut slow = slow.try_clone().unwrap();
        thread::spawn(move || {
            let _ = slow.write_all(b"GET / HTTP/1.1\r\n");
            for _ in 0..40 {
                thread::sleep(Duration::from_millis(500));
                if slow.write_all(b"X").is_err() {
                    break;
                }
            }
        })
    };
    assert_eq!(read_to_close(&mut slow), "");
    let waited = started.elapsed();
    assert!(
        waited < step_01::REQUEST_TIMEOUT + Duration::from_secs(2),
        "{waited:?}"
    );
    drop(writer);
}
