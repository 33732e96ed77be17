//! A stage against the case groups of Autobahn|Testsuite, in fast tests.
//!
//! Each test below mirrors a group of Autobahn cases (the numbers in the doc
//! comments), with the same idea on a smaller scale, so that `cargo test`
//! catches a regression without Python. The real suite runs with
//! `tests/autobahn/run-step.sh step-03` and is the final word.
//!
//! They run against an echo: stages 3 and 4 (with one client, stage 4's
//! broadcast is an echo).

use crate::*;
use std::thread;
use std::time::Duration;

/// Sends one frame and checks that the same message comes back.
#[track_caller]
fn round_trip(stream: &mut Conn, opcode: u8, payload: &[u8]) {
    send_frame(stream, true, opcode, payload);
    expect_echo(stream, opcode, payload);
}

/// Reads one whole message (one frame, the way this server echoes) and
/// compares it with what was sent.
#[track_caller]
fn expect_echo(stream: &mut Conn, opcode: u8, payload: &[u8]) {
    let echo = read_frame(stream);
    assert_eq!((echo.fin, echo.opcode), (true, opcode), "{echo:?}");
    assert!(
        echo.payload == payload,
        "the echo of {} bytes differs",
        payload.len()
    );
}

/// Text of `len` bytes, all ASCII.
fn text_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Binary of `len` bytes, every value.
fn binary_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 256) as u8).collect()
}

/// 1.1.1-1.1.8, 1.2.1-1.2.8: text and binary messages of every length
/// encoding, and one sent in chops of 997 bytes.
pub fn case_1_framing(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 1.1 and 1.2 (RFC 6455)",
        "ch03-frames/what-a-frame-looks-like.md#three-sizes-of-length",
    );
    let mut stream = ws_handshake(server.address);
    for len in [0, 125, 126, 127, 128, 65535, 65536] {
        round_trip(&mut stream, TEXT, &text_of(len));
        round_trip(&mut stream, BINARY, &binary_of(len));
    }
    for (opcode, payload) in [(TEXT, text_of(65536)), (BINARY, binary_of(65536))] {
        send_chopped(&mut stream, &client_frame(true, opcode, &payload), 997);
        expect_echo(&mut stream, opcode, &payload);
    }
    close_with(&mut stream, 1000);
}

/// 2.1-2.11: pings get pongs with the same payload, up to 125 bytes; a ping
/// of 126 bytes fails; pongs nobody asked for are ignored.
pub fn case_2_pings_and_pongs(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 2.* (RFC 6455)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    let address = server.address;
    let mut stream = ws_handshake(address);
    for payload in [
        &b""[..],
        b"Hello, world!",
        b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff",
        &[0xfe; 125],
    ] {
        send_frame(&mut stream, true, PING, payload);
        let pong = read_frame(&mut stream);
        assert_eq!((pong.opcode, pong.payload.as_slice()), (PONG, payload));
    }
    // 2.6: a ping of 125 bytes, one byte at a time.
    send_chopped(&mut stream, &client_frame(true, PING, &[0xfe; 125]), 1);
    assert_eq!(read_frame(&mut stream).payload, [0xfe; 125]);
    // 2.7-2.9: unsolicited pongs get no answer; the ping after them does.
    send_frame(&mut stream, true, PONG, b"");
    send_frame(&mut stream, true, PONG, b"unsolicited pong payload");
    send_frame(&mut stream, true, PING, b"ping payload");
    assert_eq!(read_frame(&mut stream).payload, b"ping payload");
    // 2.10, 2.11: ten pings, ten pongs, in order, sent whole or chopped.
    for chop_size in [usize::MAX, 1] {
        let mut pings = Vec::new();
        for i in 0..10 {
            pings.extend(client_frame(true, PING, format!("payload-{i}").as_bytes()));
        }
        send_chopped(&mut stream, &pings, chop_size);
        for i in 0..10 {
            let pong = read_frame(&mut stream);
            assert_eq!(
                (pong.opcode, pong.payload),
                (PONG, format!("payload-{i}").into_bytes())
            );
        }
    }
    close_with(&mut stream, 1000);
    // 2.5: 126 bytes is too many for a control frame.
    let mut stream = ws_handshake(address);
    send_frame(&mut stream, true, PING, &[0xfe; 126]);
    expect_close(&mut stream, 1002);
}

/// 3.1-3.7: any RSV bit fails the connection, whatever the frame, and
/// nothing after the bad frame is answered.
pub fn case_3_reserved_bits(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 3.* (RFC 6455)",
        "ch03-frames/reading-a-frame.md#the-header-all-here-or-not-yet",
    );
    let address = server.address;
    for (rsv, opcode, payload) in [
        (RSV1, TEXT, &b"Hello, world!"[..]),
        (RSV2, TEXT, b"Hello, world!"),
        (RSV1 | RSV2, TEXT, b"Hello, world!"),
        (RSV3, TEXT, b"Hello, world!"),
        (RSV1 | RSV3, BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"),
        (RSV2 | RSV3, PING, b"Hello, world!"),
        (RSV1 | RSV2 | RSV3, CLOSE, b""),
    ] {
        let mut stream = ws_handshake(address);
        let mut bytes = client_frame(true, TEXT, b"Hello, world!");
        bytes.extend(client_frame_raw(FIN | rsv | opcode, payload));
        bytes.extend(client_frame(true, PING, b""));
        send_raw(&mut stream, &bytes);
        expect_echo(&mut stream, TEXT, b"Hello, world!");
        expect_close(&mut stream, 1002); // and no pong
    }
}

/// 4.1.1-4.2.5: reserved opcodes, data (3-7) and control (0xB-0xF), with or
/// without payload, fail the connection; what came before is answered.
pub fn case_4_reserved_opcodes(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 4.* (RFC 6455)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    let address = server.address;
    for opcode in [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        for payload in [&b""[..], b"reserved opcode payload"] {
            let mut stream = ws_handshake(address);
            let mut bytes = client_frame(true, TEXT, b"Hello, world!");
            bytes.extend(client_frame(true, opcode, payload));
            bytes.extend(client_frame(true, PING, b""));
            send_raw(&mut stream, &bytes);
            expect_echo(&mut stream, TEXT, b"Hello, world!");
            expect_close(&mut stream, 1002);
        }
    }
}

/// 5.1-5.20: fragmentation. Fragmented control frames fail; fragments make
/// one message, however they are chopped, with pings answered in between;
/// continuations out of place fail.
pub fn case_5_fragmentation(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 5.* (RFC 6455)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let address = server.address;
    // 5.1, 5.2: control frames cannot be fragmented.
    for opcode in [PING, PONG] {
        let mut stream = ws_handshake(address);
        let mut bytes = client_frame(false, opcode, b"fragment1");
        bytes.extend(client_frame(true, CONTINUATION, b"fragment2"));
        send_raw(&mut stream, &bytes);
        expect_close(&mut stream, 1002);
    }
    // 5.3-5.8: two fragments, with or without a ping between them, sent
    // whole, frame by frame, or byte by byte.
    let mut stream = ws_handshake(address);
    for with_ping in [false, true] {
        for chop_size in [usize::MAX, 1] {
            let mut bytes = client_frame(false, TEXT, b"fragment1");
            if with_ping {
                bytes.extend(client_frame(true, PING, b"pongme!"));
            }
            bytes.extend(client_frame(true, CONTINUATION, b"fragment2"));
            send_chopped(&mut stream, &bytes, chop_size);
            if with_ping {
                assert_eq!(read_frame(&mut stream).opcode, PONG);
            }
            expect_echo(&mut stream, TEXT, b"fragment1fragment2");
        }
    }
    close_with(&mut stream, 1000);
    // 5.9-5.18: continuations with nothing to continue, and a new message
    // while one is unfinished.
    let text = |fin, payload: &[u8]| client_frame(fin, TEXT, payload);
    let continuation = |fin, payload: &[u8]| client_frame(fin, CONTINUATION, payload);
    for (frames, echoes) in [
        (
            vec![
                continuation(true, b"x"),
                text(false, b"a"),
                continuation(true, b"b"),
            ],
            0,
        ),
        (
            vec![
                continuation(false, b"x"),
                text(false, b"a"),
                continuation(true, b"b"),
            ],
            0,
        ),
        (
            vec![
                text(false, b"a"),
                continuation(true, b"b"),
                continuation(false, b"c"),
            ],
            1,
        ),
        (vec![text(false, b"a"), text(true, b"b")], 0),
    ] {
        let mut stream = ws_handshake(address);
        send_raw(&mut stream, &frames.concat());
        for _ in 0..echoes {
            expect_echo(&mut stream, TEXT, b"ab");
        }
        expect_close(&mut stream, 1002);
    }
    // 5.19, 5.20: five fragments with pings between them, sent slowly:
    // each ping is answered before the message is finished.
    let mut stream = ws_handshake(address);
    for i in 1..=5 {
        let opcode = if i == 1 { TEXT } else { CONTINUATION };
        send_frame(
            &mut stream,
            i == 5,
            opcode,
            format!("fragment{i}").as_bytes(),
        );
        if i == 1 || i == 3 {
            send_frame(&mut stream, true, PING, format!("pongme {i}!").as_bytes());
            assert_eq!(
                read_frame(&mut stream).payload,
                format!("pongme {i}!").as_bytes()
            );
        }
        thread::sleep(Duration::from_millis(20));
    }
    expect_echo(
        &mut stream,
        TEXT,
        b"fragment1fragment2fragment3fragment4fragment5",
    );
    close_with(&mut stream, 1000);
}

/// Valid UTF-8 from the 6.* cases: boundaries of each sequence length,
/// noncharacters (valid), the replacement character, "κόσμε".
const VALID_UTF8: &[&[u8]] = &[
    b"",
    b"Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5",
    b"\x00",
    b"\xc2\x80",
    b"\xe0\xa0\x80",
    b"\xf0\x90\x80\x80",
    b"\x7f",
    b"\xdf\xbf",
    b"\xef\xbf\xbf",
    b"\xf4\x8f\xbf\xbf",
    b"\xed\x9f\xbf",
    b"\xee\x80\x80",
    b"\xef\xbf\xbd",
    b"\xef\xbf\xbe",
    b"\xf0\x9f\xbf\xbe",
    b"\xf4\x8f\xbf\xbe",
];

/// Invalid UTF-8 from the 6.* cases: every kind of mistake.
const INVALID_UTF8: &[&[u8]] = &[
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
    b"\xce",                     // 6.6.1: "κόσμε" cut short
    b"\xce\xba\xe1",             // 6.6.3
    b"\xf4\x90\x80\x80",         // 6.11.5: beyond U+10FFFF
    b"\xf8\x88\x80\x80\x80",     // 6.8.1: a 5-byte sequence
    b"\xfc\x84\x80\x80\x80\x80", // 6.8.2: a 6-byte sequence
    b"\x80",                     // 6.12.1: a lonely continuation byte
    b"\xbf",
    b"\x80\xbf\x80\xbf",
    b"\xc0\x20\xc1\x20", // 6.13: lonely start bytes
    b"\xe0\x20",
    b"\xc0", // 6.14: last byte missing
    b"\xe0\x80",
    b"\xdf",
    b"\xef\xbf",
    b"\xf7\xbf\xbf",
    b"\xfe", // 6.16: impossible bytes
    b"\xff",
    b"\xfe\xfe\xff\xff",
    b"\xc0\xaf", // 6.17: overlong "/"
    b"\xe0\x80\xaf",
    b"\xf0\x80\x80\xaf",
    b"\xc1\xbf", // 6.18: maximal overlong
    b"\xe0\x9f\xbf",
    b"\xc0\x80",     // 6.19: overlong NUL
    b"\xed\xa0\x80", // 6.20: single UTF-16 surrogates
    b"\xed\xbf\xbf",
    b"\xed\xa0\x80\xed\xb0\x80", // 6.21: paired UTF-16 surrogates
];

/// 6.1-6.3, 6.5-6.23: valid text comes back, whole, in fragments of any
/// size, or chopped; invalid text fails with 1007, whole or in fragments.
pub fn case_6_utf8(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 6.* (RFC 6455)",
        "ch03-frames/from-frames-to-messages.md#utf-8-checked-as-it-arrives",
    );
    let address = server.address;
    let mut stream = ws_handshake(address);
    for text in VALID_UTF8 {
        round_trip(&mut stream, TEXT, text);
        // One byte per frame: every character cut at every byte.
        if text.is_empty() {
            continue;
        }
        for (i, byte) in text.iter().enumerate() {
            let opcode = if i == 0 { TEXT } else { CONTINUATION };
            send_frame(&mut stream, i + 1 == text.len(), opcode, &[*byte]);
        }
        expect_echo(&mut stream, TEXT, text);
        // One byte per TCP segment.
        send_chopped(&mut stream, &client_frame(true, TEXT, text), 1);
        expect_echo(&mut stream, TEXT, text);
    }
    // 6.1.2, 6.1.3: empty fragments.
    send_frame(&mut stream, false, TEXT, b"");
    send_frame(&mut stream, false, CONTINUATION, b"middle");
    send_frame(&mut stream, true, CONTINUATION, b"");
    expect_echo(&mut stream, TEXT, b"middle");
    close_with(&mut stream, 1000);
    for text in INVALID_UTF8 {
        let mut stream = ws_handshake(address);
        send_frame(&mut stream, true, TEXT, text);
        expect_close(&mut stream, 1007);
        // The same, one byte per frame.
        let mut stream = ws_handshake(address);
        for (i, byte) in text.iter().enumerate() {
            let opcode = if i == 0 { TEXT } else { CONTINUATION };
            send_frame(&mut stream, i + 1 == text.len(), opcode, &[*byte]);
        }
        expect_close(&mut stream, 1007);
    }
}

/// 6.4.1, 6.4.2: invalid text fails at the first fragment that makes it
/// invalid, before the rest of the message is sent.
pub fn case_6_4_utf8_fails_fast_per_fragment(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 6.4.1 and 6.4.2 (RFC 6455)",
        "ch03-frames/from-frames-to-messages.md#per-fragment-not-per-byte",
    );
    let address = server.address;
    for (first, bad) in [
        (
            &b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5"[..],
            &b"\xf4\x90\x80\x80"[..],
        ),
        (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4", b"\x90"),
    ] {
        let mut stream = ws_handshake(address);
        send_frame(&mut stream, false, TEXT, first);
        send_frame(&mut stream, false, CONTINUATION, bad);
        expect_close(&mut stream, 1007); // the last fragment was never sent
    }
}

/// 7.1.1-7.1.6: the closing handshake; nothing the client sends after its
/// close is answered.
pub fn case_7_1_closing_handshake(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 7.1 (RFC 6455)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let address = server.address;
    let close_1000 = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    for after in [
        client_frame(true, CLOSE, &1000u16.to_be_bytes()),
        client_frame(true, PING, b""),
        client_frame(true, TEXT, b"Hello, world!"),
    ] {
        let mut stream = ws_handshake(address);
        round_trip(&mut stream, TEXT, b"Hello, world!");
        send_raw(&mut stream, &[close_1000.clone(), after].concat());
        assert_eq!(read_close(&mut stream).close_code(), Some(1000));
        expect_end_of_stream(&mut stream);
    }
    // 7.1.5: a close between the fragments of a message ends it unanswered.
    let mut stream = ws_handshake(address);
    let mut bytes = client_frame(false, TEXT, b"fragment1");
    bytes.extend(&close_1000);
    bytes.extend(client_frame(true, CONTINUATION, b"fragment2"));
    send_raw(&mut stream, &bytes);
    assert_eq!(read_close(&mut stream).close_code(), Some(1000));
    expect_end_of_stream(&mut stream);
    // 7.1.6: a big message, then a close: both answered, in order.
    let mut stream = ws_handshake(address);
    let big = text_of(256 * 1024);
    send_raw(
        &mut stream,
        &[client_frame(true, TEXT, &big), close_1000].concat(),
    );
    expect_echo(&mut stream, TEXT, &big);
    assert_eq!(read_close(&mut stream).close_code(), Some(1000));
    expect_end_of_stream(&mut stream);
}

/// 7.3.1-7.3.6, 7.5.1: close payloads: empty, one byte, code, code and
/// reason, the longest reason (123 bytes), one byte longer, a reason that is
/// not UTF-8.
pub fn case_7_3_close_payloads(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 7.3 and 7.5 (RFC 6455)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let address = server.address;
    let with_reason = |reason: &[u8]| [&1000u16.to_be_bytes()[..], reason].concat();
    for (payload, answer) in [
        (vec![], Ok(vec![])),
        (vec![0x03], Err(1002)),
        (with_reason(b""), Ok(with_reason(b""))),
        (with_reason(b"Hello World!"), Ok(with_reason(b""))),
        (with_reason(&[b'*'; 123]), Ok(with_reason(b""))),
        (with_reason(&[b'*'; 124]), Err(1002)),
        (
            with_reason(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited"),
            Err(1007),
        ),
    ] {
        let mut stream = ws_handshake(address);
        send_frame(&mut stream, true, CLOSE, &payload);
        match answer {
            Ok(expected) => {
                assert_eq!(read_close(&mut stream).payload, expected);
                expect_end_of_stream(&mut stream);
            }
            Err(code) => expect_close(&mut stream, code),
        }
    }
}

/// 7.7.1-7.7.13, 7.9.1-7.9.9, 7.13.1-7.13.2: valid close codes are echoed,
/// the others fail with 1002.
pub fn case_7_7_and_7_9_close_codes(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 7.7, 7.9 and 7.13 (RFC 6455)",
        "ch03-frames/closing.md#the-close-frame",
    );
    let address = server.address;
    for code in [
        1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        let mut stream = ws_handshake(address);
        close_with(&mut stream, code);
    }
    for code in [
        0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        let mut stream = ws_handshake(address);
        send_frame(&mut stream, true, CLOSE, &u16::to_be_bytes(code));
        expect_close(&mut stream, 1002);
    }
}

/// 9.1.*-9.8.* (smaller): big messages whole, in many small fragments, in
/// small TCP chops, and many small messages in a row. The largest, 16 MiB,
/// is exactly the limit.
pub fn case_9_limits_and_performance(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 9.* (RFC 6455)",
        "ch03-frames/reading-a-frame.md#the-frame-decided-from-the-header",
    );
    let mut stream = ws_handshake(server.address);
    // 9.1, 9.2: whole messages.
    for len in [64 * 1024, 1 << 20] {
        round_trip(&mut stream, TEXT, &text_of(len));
        round_trip(&mut stream, BINARY, &binary_of(len));
    }
    // 9.3, 9.4: 1 MiB in fragments of 64 bytes and of 64 KiB.
    let message = text_of(1 << 20);
    for fragment_len in [64, 64 * 1024] {
        let fragments: Vec<&[u8]> = message.chunks(fragment_len).collect();
        let mut bytes = Vec::new();
        for (i, fragment) in fragments.iter().enumerate() {
            let opcode = if i == 0 { TEXT } else { CONTINUATION };
            bytes.extend(client_frame(i + 1 == fragments.len(), opcode, fragment));
        }
        send_raw(&mut stream, &bytes);
        expect_echo(&mut stream, TEXT, &message);
    }
    // 9.5, 9.6: 1 MiB in TCP chops of 1 KiB.
    send_chopped(&mut stream, &client_frame(true, BINARY, &message), 1024);
    expect_echo(&mut stream, BINARY, &message);
    // 9.7, 9.8: a thousand small messages, each waiting for its echo.
    for i in 0..1000 {
        round_trip(
            &mut stream,
            if i % 2 == 0 { TEXT } else { BINARY },
            &text_of(i % 64),
        );
    }
    // 9.1.6, 9.2.6: 16 MiB, the largest message the server accepts.
    round_trip(&mut stream, BINARY, &binary_of(server.max_message_len()));
    close_with(&mut stream, 1000);
}

/// 10.1.1: a 64 KiB message that arrives in frames of 1300 bytes comes back
/// whole.
pub fn case_10_auto_fragmentation(server: &Server) {
    about(
        "Autobahn|Testsuite, cases 10.1.1 (RFC 6455)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let mut stream = ws_handshake(server.address);
    let message = text_of(65536);
    let fragments: Vec<&[u8]> = message.chunks(1300).collect();
    for (i, fragment) in fragments.iter().enumerate() {
        let opcode = if i == 0 { TEXT } else { CONTINUATION };
        send_frame(&mut stream, i + 1 == fragments.len(), opcode, fragment);
    }
    expect_echo(&mut stream, TEXT, &message);
    close_with(&mut stream, 1000);
}
