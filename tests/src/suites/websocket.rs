//! The rules of RFC 6455 whose answer is not an echo, over real TCP: a
//! ping's pong, each protocol error and its close code, the closing
//! handshake. Every stage that speaks WebSocket keeps them, the chat of
//! stage 5 too: a client that has not joined it still gets these answers.

use crate::*;
use std::io::{Read, Write};
use std::net::SocketAddr;
use std::thread;

/// Sends `bytes` after the handshake and returns the close frame that
/// answers them, after checking that the server then closes the connection.
#[track_caller]
fn refused(address: SocketAddr, bytes: &[u8]) -> Frame {
    let mut stream = ws_handshake(address);
    send_raw(&mut stream, bytes);
    let close = read_close(&mut stream);
    // The polite end: our close in answer, then the server hangs up.
    send_frame(&mut stream, true, CLOSE, &[]);
    expect_end_of_stream(&mut stream);
    close
}

/// Checks that `close` has `code`; `what` says what was refused.
#[track_caller]
fn expect_code(close: &Frame, code: u16, what: &str) {
    assert!(
        close.close_code() == Some(code),
        "{what} fails the connection with close code {code}; got {close:?}"
    );
}

pub fn a_ping_gets_a_pong_with_the_same_payload(server: &Server) {
    about(
        "RFC 6455, sections 5.5.2 and 5.5.3 (ping and pong)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    let mut stream = ws_handshake(server.address);
    for payload in [&b""[..], b"Hello", &[0xff; 125]] {
        send_frame(&mut stream, true, PING, payload);
        let pong = read_frame(&mut stream);
        assert!(
            (pong.opcode, pong.payload.as_slice()) == (PONG, payload),
            "a ping of {} bytes gets a pong with the same payload; got {pong:?}",
            payload.len()
        );
    }
    close_with(&mut stream, 1000);
}

pub fn an_unmasked_frame_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.1 (a server must close on an unmasked frame)",
        "ch03-frames/masking.md#what-the-server-checks",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    chat.send_raw(
        "client",
        &mut client,
        "81 05 48 65 6c 6c 6f (an unmasked \"Hello\")",
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    );
    let close = chat.receive("client", &mut client);
    expect_code(&close, 1002, "an unmasked frame");
    chat.expect_end_of_stream("client", &mut client);
    chat.keep();
}

pub fn reserved_bits_get_1002(server: &Server) {
    about(
        "RFC 6455, section 5.2 (RSV1-3 must be 0 without an extension)",
        "ch03-frames/reading-a-frame.md#the-header-all-here-or-not-yet",
    );
    for rsv in [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3] {
        let close = refused(
            server.address,
            &client_frame_raw(FIN | rsv | TEXT, b"Hello"),
        );
        expect_code(&close, 1002, &format!("a frame with RSV bits {rsv:#010b}"));
    }
}

pub fn reserved_opcodes_get_1002(server: &Server) {
    about(
        "RFC 6455, section 5.2 (opcodes 3-7 and 0xB-0xF are reserved)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let close = refused(server.address, &client_frame(true, opcode, b""));
        expect_code(&close, 1002, &format!("a frame with opcode {opcode:#x}"));
    }
}

pub fn a_fragmented_control_frame_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.5 (control frames must not be fragmented)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    for opcode in [PING, PONG, CLOSE] {
        let mut bytes = client_frame(false, opcode, b"part 1");
        bytes.extend(client_frame(true, CONTINUATION, b"part 2"));
        let close = refused(server.address, &bytes);
        expect_code(
            &close,
            1002,
            &format!("a fragmented {}", opcode_name(opcode)),
        );
    }
}

pub fn a_control_frame_over_125_bytes_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.5 (control frames carry at most 125 bytes)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    for opcode in [PING, PONG, CLOSE] {
        let close = refused(server.address, &client_frame(true, opcode, &[b'x'; 126]));
        expect_code(
            &close,
            1002,
            &format!("a {} of 126 bytes", opcode_name(opcode)),
        );
    }
}

pub fn a_continuation_with_nothing_to_continue_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.4 (fragmentation)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let close = refused(server.address, &client_frame(true, CONTINUATION, b"lo"));
    expect_code(&close, 1002, "a continuation with no message started");
}

pub fn a_new_message_before_the_last_one_is_finished_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.4 (fragments of one message may not interleave)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    for opcode in [TEXT, BINARY] {
        let mut bytes = client_frame(false, TEXT, b"Hel");
        bytes.extend(client_frame(true, opcode, b"Hello"));
        let close = refused(server.address, &bytes);
        expect_code(&close, 1002, "a new message while one is unfinished");
    }
}

pub fn invalid_utf8_gets_1007(server: &Server) {
    about(
        "RFC 6455, section 8.1 (text must be UTF-8; 1007 otherwise)",
        "ch03-frames/from-frames-to-messages.md#utf-8-checked-as-it-arrives",
    );
    let cases: &[&[u8]] = &[
        b"\xff",             // never valid
        b"caf\xe9",          // Latin-1, not UTF-8
        b"\xc0\xaf",         // an overlong "/"
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\xf4\x90\x80\x80", // over U+10FFFF
        b"Hello \xe2\x82",   // ends in the middle of a character
    ];
    for payload in cases {
        let close = refused(server.address, &client_frame(true, TEXT, payload));
        expect_code(&close, 1007, &format!("text {payload:x?}, not UTF-8,"));
    }
}

/// The message is never finished: only checking each fragment as it arrives
/// can answer it.
pub fn invalid_utf8_in_a_fragment_fails_before_the_message_ends(server: &Server) {
    about(
        "RFC 6455, section 8.1 (fail fast on invalid UTF-8)",
        "ch03-frames/from-frames-to-messages.md#per-fragment-not-per-byte",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    chat.send("client", &mut client, false, TEXT, b"Hello, ");
    chat.send("client", &mut client, false, CONTINUATION, b"w\xf6rld");
    let close = chat.receive("client", &mut client);
    expect_code(
        &close,
        1007,
        "a fragment that is not UTF-8, before the message ends,",
    );
    chat.expect_end_of_stream("client", &mut client);
    chat.keep();
}

pub fn a_64_bit_length_with_the_top_bit_set_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.2 (the most significant bit of a 64-bit length must be 0)",
        "ch03-frames/what-a-frame-looks-like.md#three-sizes-of-length",
    );
    let mut bytes = vec![FIN | BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5];
    bytes.extend(next_mask());
    let close = refused(server.address, &bytes);
    expect_code(&close, 1002, "a 64-bit length with its top bit set");
}

pub fn a_close_is_answered_with_the_same_code_then_the_server_hangs_up(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (close: echo the status code)",
        "ch03-frames/closing.md#the-close-frame",
    );
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        let mut stream = ws_handshake(server.address);
        close_with(&mut stream, code);
    }
}

pub fn a_close_with_a_reason(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (close)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice("goodbye, κόσμε".as_bytes());
    chat.send("client", &mut client, true, CLOSE, &payload);
    let close = chat.receive("client", &mut client);
    expect_code(
        &close,
        1000,
        "a close with code 1000 and a reason is answered, and",
    );
    chat.expect_end_of_stream("client", &mut client);
    chat.keep();
}

pub fn an_empty_close_gets_an_empty_close(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (close)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let mut stream = ws_handshake(server.address);
    send_frame(&mut stream, true, CLOSE, b"");
    let close = read_close(&mut stream);
    assert!(
        close.payload.is_empty(),
        "a close without a code is answered with a close without one; got {close:?}"
    );
    expect_end_of_stream(&mut stream);
}

pub fn invalid_close_codes_get_1002(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (the codes a close frame may carry)",
        "ch03-frames/closing.md#the-close-frame",
    );
    for code in [
        0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let close = refused(
            server.address,
            &client_frame(true, CLOSE, &u16::to_be_bytes(code)),
        );
        expect_code(&close, 1002, &format!("a close with code {code}"));
    }
}

pub fn a_close_payload_of_one_byte_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (a close body starts with a 2-byte code)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let close = refused(server.address, &client_frame(true, CLOSE, b"\x03"));
    expect_code(&close, 1002, "a close of one byte");
}

pub fn a_close_reason_that_is_not_utf8_gets_1007(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (the reason is UTF-8)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let close = refused(
        server.address,
        &client_frame(true, CLOSE, b"\x03\xe8caf\xe9"),
    );
    expect_code(&close, 1007, "a close reason that is not UTF-8");
}

pub fn nothing_is_answered_after_the_close(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (nothing is sent after a close frame)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let mut stream = ws_handshake(server.address);
    let mut bytes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    bytes.extend(client_frame(true, PING, b"too late"));
    bytes.extend(client_frame(true, TEXT, b"too late"));
    send_raw(&mut stream, &bytes);
    let close = read_close(&mut stream);
    expect_code(
        &close,
        1000,
        "a close followed by a ping and a text is answered, and",
    );
    expect_end_of_stream(&mut stream);
}

/// The server closes the TCP connection first, right after its close frame,
/// without waiting for the client to close its side (RFC 6455, section
/// 7.1.1), whether the client or the server started the closing handshake.
pub fn the_server_closes_the_connection_first(server: &Server) {
    about(
        "RFC 6455, section 7.1.1 (the server closes the TCP connection first)",
        "ch03-frames/closing.md#hanging-up-without-losing-the-last-word",
    );
    let client_closes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    let server_closes = vec![0x81, 0x00]; // unmasked: refused
    for (bytes, code) in [(client_closes, 1000), (server_closes, 1002)] {
        let mut stream = ws_handshake(server.address);
        send_raw(&mut stream, &bytes);
        expect_code(&read_close(&mut stream), code, "the frame");
        stream
            .set_read_timeout(Some(server.close_timeout() / 2))
            .unwrap();
        let mut byte = [0];
        let end = stream.read(&mut byte);
        assert!(
            end.ok() == Some(0),
            "after its close frame, the server closes the connection at once, without \
             waiting for the client to close first"
        );
    }
}

/// After its close frame the server reads what the client still sends,
/// instead of closing a socket with unread data: that would reset the
/// connection (TCP RST), and a reset can destroy the close frame on its way.
pub fn the_server_hangs_up_cleanly_on_a_client_that_keeps_sending(server: &Server) {
    about(
        "RFC 6455, section 7.1.1; RFC 9293, section 3.6.1 (a reset for unread data)",
        "ch03-frames/closing.md#hanging-up-without-losing-the-last-word",
    );
    let mut stream = ws_handshake(server.address);
    // An unmasked frame, then 1 MiB more that the server will not want.
    let mut bytes = vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
    bytes.extend(client_frame(true, BINARY, &vec![0; 1 << 20]));
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || writer.write_all(&bytes));
    expect_code(&read_close(&mut stream), 1002, "an unmasked frame");
    expect_end_of_stream(&mut stream); // the end of the stream, not a reset
    assert!(
        sending.join().unwrap().is_ok(),
        "the server stopped reading what the client sent after its close frame"
    );
}

pub fn the_page_shows_what_comes_back_as_text(server: &Server) {
    about(
        "the HTML standard: textContent vs innerHTML",
        "ch03-frames/the-echo-server.md#what-you-should-see",
    );
    let response = http(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    response.expect_status(200, "`GET /` serves the page");
    assert!(
        response.body.contains("new WebSocket("),
        "the page opens a WebSocket: its script calls `new WebSocket(...)`"
    );
    assert!(
        response.body.contains("onmessage") || response.body.contains("\"message\""),
        "the page shows what comes back: it listens for `message` events"
    );
    assert!(
        !response.body.contains("innerHTML ="),
        "the page must show messages as text (`textContent`), never as HTML (`innerHTML =`)"
    );
}
