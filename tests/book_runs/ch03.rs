//! The runs chapter 3 shows: see `book_runs.rs`.

use super::*;
use ws_tests::{BINARY, CLOSE, TEXT, connect, expect_end_of_stream, read_to_close, send_raw};

pub const RUNS: Runs = &[
    ("step-03-browser.log", step_03_browser),
    ("step-03-node.log", step_03_node),
    ("step-03-by-hand.log", step_03_by_hand),
];

/// A close frame from a client: the status code, then the reason.
fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason.as_bytes());
    payload
}

/// Chapter 3, "What you should see": the page opened in a browser, two
/// messages sent from it, and the tab closed. The browser asks for its tab
/// icon while the WebSocket is open, and that request waits behind it.
fn step_03_browser() -> String {
    let run = Run::start("step-03");
    exchange(
        run.address(),
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    );
    let mut page = ws_handshake(run.address());
    for text in ["Hello, echo!", "κόσμε 😀"] {
        send_text(&mut page, text);
        assert_eq!(read_text(&mut page), text);
    }
    let mut icon = connect(run.address());
    send_raw(
        &mut icon,
        b"GET /favicon.ico HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n",
    );
    // The tab is closed: the browser sends a close frame with 1001.
    send_frame(&mut page, true, CLOSE, &1001u16.to_be_bytes());
    assert_eq!(read_frame(&mut page).close_code(), Some(1001));
    expect_end_of_stream(&mut page);
    drop(page);
    read_to_close(&mut icon);
    run.finish()
}

/// Chapter 3, "Try it": the server's side of the Node.js session, which
/// sends two texts, 300 bytes of text and 3 bytes of binary, then closes.
fn step_03_node() -> String {
    let run = Run::start("step-03");
    let mut node = ws_handshake(run.address());
    let long = "x".repeat(300);
    let messages: [(u8, &[u8]); 4] = [
        (TEXT, b"Hello"),
        (TEXT, "κόσμε 😀".as_bytes()),
        (TEXT, long.as_bytes()),
        (BINARY, &[1, 2, 3]),
    ];
    for (opcode, payload) in messages {
        send_frame(&mut node, true, opcode, payload);
    }
    for (opcode, payload) in messages {
        let echo = read_frame(&mut node);
        assert_eq!((echo.opcode, &echo.payload[..]), (opcode, payload));
    }
    send_frame(&mut node, true, CLOSE, &close_payload(1000, "bye"));
    assert_eq!(read_frame(&mut node).close_code(), Some(1000));
    expect_end_of_stream(&mut node);
    drop(node);
    run.finish()
}

/// Chapter 3, "Try it": the server's side of the three conversations typed
/// with bash, each sent in one write, the request and the frames together:
/// the masked "Hello" of RFC 6455 and a close, an unmasked "Hello", and a
/// header that announces 16 MiB and 1 byte.
fn step_03_by_hand() -> String {
    let run = Run::start("step-03");
    let request = "GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    let frames: [&[u8]; 3] = [
        b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58\x88\x82\x37\xfa\x21\x3d\x34\x12",
        b"\x81\x05Hello",
        b"\x82\xff\x00\x00\x00\x00\x01\x00\x00\x01\x37\xfa\x21\x3d",
    ];
    for frames in frames {
        let mut bytes = request.as_bytes().to_vec();
        bytes.extend_from_slice(frames);
        let mut stream = connect(run.address());
        send_raw(&mut stream, &bytes);
        // Like `cat <&3`: read until the server closes its side, then go.
        read_to_close(&mut stream);
    }
    run.finish()
}
