//! Every rule of RFC 6455 framing, over real TCP, against a stage with one
//! client: the echo, each protocol error and its close code, the closing
//! handshake, and the hostile clients. The client is the independent one of
//! `ws_tests`, not the stage's own `ws` module.
//!
//! This file is a module of each stage's test file (`step_03.rs`,
//! `step_04.rs`, ...), which says which stage `stage` is and how `server()`
//! starts it: a rule that holds in stage 3 must go on holding after it. With
//! one client, stage 4's broadcast is an echo.

use super::{server, stage};
use insta::assert_snapshot;
use std::io::Write;
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Duration;
use ws_tests::*;

// The echo.

#[test]
fn echoes_a_text_message() {
    let mut client = Conversation::open(server());
    client.send(true, TEXT, b"Hello");
    client.receive();
    client.send(true, CLOSE, &1000u16.to_be_bytes());
    client.receive();
    client.expect_end_of_stream();
    assert_snapshot!(client.transcript());
}

#[test]
fn echoes_a_binary_message() {
    let mut stream = ws_handshake(server());
    let every_byte: Vec<u8> = (0..=255).collect();
    send_frame(&mut stream, true, BINARY, &every_byte);
    let echo = read_frame(&mut stream);
    assert_eq!((echo.fin, echo.opcode), (true, BINARY));
    assert_eq!(echo.payload, every_byte);
    close_with(&mut stream, 1000);
}

/// The masked "Hello" of RFC 6455, section 5.7, byte for byte, comes back as
/// the unmasked "Hello" of the same section.
#[test]
fn rfc_masked_hello_comes_back_as_rfc_unmasked_hello() {
    let mut stream = ws_handshake(server());
    send_raw(
        &mut stream,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    );
    let mut echo = [0; 7];
    std::io::Read::read_exact(&mut stream, &mut echo).unwrap();
    assert_eq!(echo, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    close_with(&mut stream, 1000);
}

/// The classic bug is `len as u8`: right up to 125 bytes, wrong from 126.
#[test]
fn every_length_encoding_round_trips() {
    let address = server();
    for len in [0, 1, 125, 126, 127, 128, 65535, 65536, 100_000] {
        let mut stream = ws_handshake(address);
        let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
        for opcode in [TEXT, BINARY] {
            send_frame(&mut stream, true, opcode, &payload);
            let echo = read_frame(&mut stream);
            assert_eq!(echo.opcode, opcode, "length {len}");
            assert!(echo.payload == payload, "length {len}: payload differs");
        }
        close_with(&mut stream, 1000);
    }
}

#[test]
fn a_frame_in_the_same_write_as_the_request_is_answered() {
    let address = server();
    let mut stream = connect(address);
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend(client_frame(true, TEXT, b"early"));
    send_raw(&mut stream, &bytes);
    check_101(&read_http_head(&mut stream));
    assert_eq!(read_frame(&mut stream).payload, b"early");
    close_with(&mut stream, 1000);
}

#[test]
fn a_frame_arriving_one_byte_at_a_time() {
    let mut stream = ws_handshake(server());
    // No Nagle: each one-byte write leaves as its own TCP segment.
    stream.set_nodelay(true).unwrap();
    let payload = vec![b'x'; 200]; // a 16-bit length, so a header of 8 bytes
    for byte in client_frame(true, TEXT, &payload) {
        send_raw(&mut stream, &[byte]);
        thread::sleep(Duration::from_micros(500));
    }
    assert_eq!(read_frame(&mut stream).payload, payload);
    close_with(&mut stream, 1000);
}

// Fragmentation.

#[test]
fn fragments_are_put_together() {
    let mut client = Conversation::open(server());
    client.send(false, TEXT, b"Hel");
    client.send(false, CONTINUATION, b"");
    client.send(true, CONTINUATION, b"lo");
    client.receive();
    client.send(false, BINARY, b"\x00\x01");
    client.send(true, CONTINUATION, b"\x02");
    client.receive();
    assert_snapshot!(client.transcript());
    close_with(&mut client.stream, 1000);
}

/// The pong comes back before the message is finished.
#[test]
fn a_ping_between_fragments_is_answered_at_once() {
    let mut client = Conversation::open(server());
    client.send(false, TEXT, b"Hel");
    client.send(true, PING, b"still there?");
    client.receive();
    client.send(true, CONTINUATION, b"lo");
    client.receive();
    assert_snapshot!(client.transcript());
    close_with(&mut client.stream, 1000);
}

#[test]
fn a_text_character_split_across_fragments() {
    let mut stream = ws_handshake(server());
    send_frame(&mut stream, false, TEXT, b"caf\xc3");
    send_frame(&mut stream, true, CONTINUATION, b"\xa9");
    assert_eq!(read_frame(&mut stream).payload, "café".as_bytes());
    close_with(&mut stream, 1000);
}

// Ping and pong.

#[test]
fn a_ping_gets_a_pong_with_the_same_payload() {
    let mut stream = ws_handshake(server());
    for payload in [&b""[..], b"Hello", &[0xff; 125]] {
        send_frame(&mut stream, true, PING, payload);
        let pong = read_frame(&mut stream);
        assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, payload));
    }
    close_with(&mut stream, 1000);
}

#[test]
fn a_pong_nobody_asked_for_is_ignored() {
    let mut stream = ws_handshake(server());
    send_frame(&mut stream, true, PONG, b"heartbeat");
    send_frame(&mut stream, true, TEXT, b"after the pong");
    assert_eq!(read_frame(&mut stream).payload, b"after the pong");
    close_with(&mut stream, 1000);
}

// Protocol errors: a close frame with the code, then the end of the stream.

/// Sends `bytes` after the handshake and returns the close frame that
/// answers them, after checking that the server then closes the connection.
fn refused(address: SocketAddr, bytes: &[u8]) -> Frame {
    let mut stream = ws_handshake(address);
    send_raw(&mut stream, bytes);
    let close = read_close(&mut stream);
    // The polite end: our close in answer, then the server hangs up.
    send_frame(&mut stream, true, CLOSE, &[]);
    expect_end_of_stream(&mut stream);
    close
}

#[test]
fn an_unmasked_frame_gets_1002() {
    let mut client = Conversation::open(server());
    client.send_raw(
        "81 05 48 65 6c 6c 6f (an unmasked \"Hello\")",
        &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
    );
    client.receive();
    client.expect_end_of_stream();
    assert_snapshot!(client.transcript());
}

#[test]
fn reserved_bits_get_1002() {
    let address = server();
    for rsv in [RSV1, RSV2, RSV3, RSV1 | RSV2 | RSV3] {
        let close = refused(address, &client_frame_raw(FIN | rsv | TEXT, b"Hello"));
        assert_eq!(close.close_code(), Some(1002), "RSV bits {rsv:#010b}");
    }
}

#[test]
fn reserved_opcodes_get_1002() {
    let address = server();
    for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        let close = refused(address, &client_frame(true, opcode, b""));
        assert_eq!(close.close_code(), Some(1002), "opcode {opcode:#x}");
    }
}

#[test]
fn a_fragmented_control_frame_gets_1002() {
    let address = server();
    for opcode in [PING, PONG, CLOSE] {
        let mut bytes = client_frame(false, opcode, b"part 1");
        bytes.extend(client_frame(true, CONTINUATION, b"part 2"));
        assert_eq!(refused(address, &bytes).close_code(), Some(1002));
    }
}

#[test]
fn a_control_frame_over_125_bytes_gets_1002() {
    let address = server();
    for opcode in [PING, PONG, CLOSE] {
        let close = refused(address, &client_frame(true, opcode, &[b'x'; 126]));
        assert_eq!(close.close_code(), Some(1002));
    }
}

#[test]
fn a_continuation_with_no_message_started_gets_1002() {
    let address = server();
    let close = refused(address, &client_frame(true, CONTINUATION, b"lo"));
    assert_eq!(close.close_code(), Some(1002));
    // Also right after a finished message.
    let mut bytes = client_frame(true, TEXT, b"Hello");
    bytes.extend(client_frame(true, CONTINUATION, b"!"));
    let mut stream = ws_handshake(address);
    send_raw(&mut stream, &bytes);
    assert_eq!(read_frame(&mut stream).payload, b"Hello");
    assert_eq!(read_close(&mut stream).close_code(), Some(1002));
}

#[test]
fn a_new_message_before_the_last_one_is_finished_gets_1002() {
    let address = server();
    for opcode in [TEXT, BINARY] {
        let mut bytes = client_frame(false, TEXT, b"Hel");
        bytes.extend(client_frame(true, opcode, b"Hello"));
        assert_eq!(refused(address, &bytes).close_code(), Some(1002));
    }
}

#[test]
fn invalid_utf8_gets_1007() {
    let address = server();
    let cases: &[&[u8]] = &[
        b"\xff",             // never valid
        b"caf\xe9",          // Latin-1, not UTF-8
        b"\xc0\xaf",         // an overlong "/"
        b"\xed\xa0\x80",     // a UTF-16 surrogate
        b"\xf4\x90\x80\x80", // over U+10FFFF
        b"Hello \xe2\x82",   // ends in the middle of a character
    ];
    for payload in cases {
        let close = refused(address, &client_frame(true, TEXT, payload));
        assert_eq!(close.close_code(), Some(1007), "{payload:x?}");
    }
}

/// The message is never finished: only checking each fragment as it arrives
/// can answer it.
#[test]
fn invalid_utf8_in_a_fragment_fails_before_the_message_ends() {
    let mut client = Conversation::open(server());
    client.send(false, TEXT, b"Hello, ");
    client.send(false, CONTINUATION, b"w\xf6rld");
    client.receive();
    client.expect_end_of_stream();
    assert_snapshot!(client.transcript());
}

/// The client announces 16 MiB + 1 byte, and sends nothing more: the answer
/// comes from the header alone.
#[test]
fn an_oversized_frame_gets_1009_before_its_payload_is_sent() {
    let mut client = Conversation::open(server());
    let len = stage::ws::MAX_MESSAGE_LEN as u64 + 1;
    client.send_raw(
        "a header announcing 16 MiB + 1 byte of binary, and no payload",
        &frame_header(FIN | BINARY, len, Some(next_mask())),
    );
    client.receive();
    assert_snapshot!(client.transcript());
}

#[test]
fn a_64_bit_length_with_the_top_bit_set_gets_1002() {
    let mut bytes = vec![FIN | BINARY, 0x80 | 127, 0x80, 0, 0, 0, 0, 0, 0, 5];
    bytes.extend(next_mask());
    let close = refused(server(), &bytes);
    assert_eq!(close.close_code(), Some(1002));
}

/// 16 MiB in fragments of 1 MiB, then one byte more.
#[test]
fn a_fragmented_message_over_the_limit_gets_1009() {
    let mut stream = ws_handshake(server());
    let mebibyte = vec![b'x'; 1 << 20];
    send_frame(&mut stream, false, TEXT, &mebibyte);
    for _ in 1..16 {
        send_frame(&mut stream, false, CONTINUATION, &mebibyte);
    }
    send_frame(&mut stream, true, CONTINUATION, b"!");
    assert_eq!(read_close(&mut stream).close_code(), Some(1009));
}

// The closing handshake.

#[test]
fn a_close_is_answered_with_the_same_code_then_the_server_hangs_up() {
    let address = server();
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999,
    ] {
        let mut stream = ws_handshake(address);
        close_with(&mut stream, code);
    }
}

#[test]
fn a_close_with_a_reason() {
    let mut client = Conversation::open(server());
    let mut payload = 1000u16.to_be_bytes().to_vec();
    payload.extend_from_slice("goodbye, κόσμε".as_bytes());
    client.send(true, CLOSE, &payload);
    client.receive();
    client.expect_end_of_stream();
    assert_snapshot!(client.transcript());
}

#[test]
fn an_empty_close_gets_an_empty_close() {
    let mut stream = ws_handshake(server());
    send_frame(&mut stream, true, CLOSE, b"");
    assert_eq!(read_close(&mut stream).payload, b"");
    expect_end_of_stream(&mut stream);
}

#[test]
fn invalid_close_codes_get_1002() {
    let address = server();
    for code in [
        0, 999, 1004, 1005, 1006, 1012, 1015, 1016, 2000, 2999, 5000, 65535,
    ] {
        let close = refused(address, &client_frame(true, CLOSE, &u16::to_be_bytes(code)));
        assert_eq!(close.close_code(), Some(1002), "code {code}");
    }
}

#[test]
fn a_close_payload_of_one_byte_gets_1002() {
    let close = refused(server(), &client_frame(true, CLOSE, b"\x03"));
    assert_eq!(close.close_code(), Some(1002));
}

#[test]
fn a_close_reason_that_is_not_utf8_gets_1007() {
    let close = refused(server(), &client_frame(true, CLOSE, b"\x03\xe8caf\xe9"));
    assert_eq!(close.close_code(), Some(1007));
}

#[test]
fn nothing_is_answered_after_the_close() {
    let mut stream = ws_handshake(server());
    let mut bytes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    bytes.extend(client_frame(true, PING, b"too late"));
    bytes.extend(client_frame(true, TEXT, b"too late"));
    send_raw(&mut stream, &bytes);
    assert_eq!(read_close(&mut stream).close_code(), Some(1000));
    expect_end_of_stream(&mut stream);
}

/// The server closes the TCP connection first, right after its close frame,
/// without waiting for the client to close its side (RFC 6455, section
/// 7.1.1), whether the client or the server started the closing handshake.
#[test]
fn the_server_closes_the_connection_first() {
    let address = server();
    let client_closes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    let server_closes = vec![0x81, 0x00]; // unmasked: refused
    for (bytes, code) in [(client_closes, 1000), (server_closes, 1002)] {
        let mut stream = ws_handshake(address);
        send_raw(&mut stream, &bytes);
        assert_eq!(read_close(&mut stream).close_code(), Some(code));
        stream
            .set_read_timeout(Some(stage::CLOSE_TIMEOUT / 2))
            .unwrap();
        let mut byte = [0];
        let end = std::io::Read::read(&mut stream, &mut byte);
        assert_eq!(end.ok(), Some(0), "no end of stream after the close frame");
    }
}

/// After its close frame the server reads what the client still sends,
/// instead of closing a socket with unread data: that would reset the
/// connection (TCP RST), and a reset can destroy the close frame on its way.
#[test]
fn the_server_hangs_up_cleanly_on_a_client_that_keeps_sending() {
    let mut stream = ws_handshake(server());
    // An unmasked frame, then 1 MiB more that the server will not want.
    let mut bytes = vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
    bytes.extend(client_frame(true, BINARY, &vec![0; 1 << 20]));
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || writer.write_all(&bytes));
    assert_eq!(read_close(&mut stream).close_code(), Some(1002));
    expect_end_of_stream(&mut stream); // the end of the stream, not a reset
    assert!(
        sending.join().unwrap().is_ok(),
        "the server stopped reading"
    );
}

// Hostile and unlucky clients.

#[test]
fn a_client_vanishing_mid_frame_does_not_stop_the_server() {
    let address = server();
    let frame = client_frame(true, TEXT, b"Hello, is anybody there?");
    for cut in [1, 2, 6, 10] {
        let mut stream = ws_handshake(address);
        send_raw(&mut stream, &frame[..cut]);
        stream.shutdown(Shutdown::Both).unwrap();
    }
    let mut stream = ws_handshake(address);
    send_frame(&mut stream, true, TEXT, b"next");
    assert_eq!(read_frame(&mut stream).payload, b"next");
    close_with(&mut stream, 1000);
}

#[test]
fn a_client_leaving_without_a_close_frame_does_not_stop_the_server() {
    let address = server();
    let mut stream = ws_handshake(address);
    send_frame(&mut stream, true, TEXT, b"bye");
    // Wait for it to come back, so that, in a chat, it went round before the
    // next client arrives.
    assert_eq!(read_frame(&mut stream).payload, b"bye");
    drop(stream);
    let mut stream = ws_handshake(address);
    send_frame(&mut stream, true, TEXT, b"next");
    assert_eq!(read_frame(&mut stream).payload, b"next");
    close_with(&mut stream, 1000);
}

/// The deadline for the HTTP request does not apply to the WebSocket after
/// it: a conversation may be quiet for as long as the client likes.
#[test]
fn a_quiet_websocket_is_not_cut_off() {
    let mut stream = ws_handshake(server());
    thread::sleep(stage::REQUEST_TIMEOUT + Duration::from_millis(500));
    send_frame(&mut stream, true, TEXT, b"still here");
    assert_eq!(read_frame(&mut stream).payload, b"still here");
    close_with(&mut stream, 1000);
}

// HTTP still works.

#[test]
fn get_slash_serves_the_page() {
    let response = exchange(server(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    assert!(response.contains("Content-Type: text/html; charset=utf-8"));
    assert!(response.contains("new WebSocket("));
    assert!(response.contains("onmessage"));
    assert!(
        !response.contains("innerHTML ="),
        "show messages as text only"
    );
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
/// half-close: `shutdown(Write)`) still reads the whole answer.
#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    half_closing_clients_get_their_answers(server());
}

#[test]
fn a_refused_upgrade_is_still_an_http_error() {
    let address = server();
    let request = upgrade_request(address).replace("Version: 13", "Version: 8");
    let mut stream = connect(address);
    stream.write_all(request.as_bytes()).unwrap();
    let response = read_to_close(&mut stream);
    assert_eq!(status_line(&response), "HTTP/1.1 426 Upgrade Required");
}
