//! WebSocket frames over real TCP, against a server that sends every
//! message back: the echo of stage 3, and the broadcast of stage 4, which
//! with one client is an echo. Each length encoding, fragments, pings in
//! between, frames that arrive in pieces or all at once, and clients that
//! leave badly.

use crate::*;
use std::net::Shutdown;
use std::thread;
use std::time::Duration;

/// Sends one frame and checks that the same message comes back, whole.
#[track_caller]
fn round_trip(stream: &mut Conn, opcode: u8, payload: &[u8]) {
    send_frame(stream, true, opcode, payload);
    let echo = read_frame(stream);
    assert!(
        (echo.fin, echo.opcode) == (true, opcode),
        "the echo of a {} message of {} bytes is a whole {} message; got {echo:?}",
        opcode_name(opcode),
        payload.len(),
        opcode_name(opcode),
    );
    if echo.payload != payload {
        let at = echo
            .payload
            .iter()
            .zip(payload)
            .position(|(a, b)| a != b)
            .unwrap_or(echo.payload.len().min(payload.len()));
        panic!(
            "the echo of {} bytes differs from what was sent: it has {} bytes, and differs from byte {at}",
            payload.len(),
            echo.payload.len()
        );
    }
}

/// Sends one frame and checks the header of its echo byte by byte: the
/// 7-bit length field says `code` (126: a 16-bit length follows, 127: a
/// 64-bit one), then the length, then the payload.
#[track_caller]
fn round_trip_with_length(stream: &mut Conn, opcode: u8, payload: &[u8], code: u8) {
    send_frame(stream, true, opcode, payload);
    let len = payload.len();
    let mut head = [0; 2];
    if let Err(error) = std::io::Read::read_exact(stream, &mut head) {
        panic!(
            "expected the echo of {len} bytes: {}",
            what_happened(&error)
        );
    }
    let (bits, more) = match code {
        126 => ("16", 2),
        _ => ("64", 8),
    };
    assert!(
        head[0] & FIN != 0,
        "the echo of {len} bytes came back as a fragment (its first byte, {:02x}, has no \
         FIN): these checks want each message back in one frame",
        head[0]
    );
    assert!(
        head[1] & 0x7f == code,
        "the echo of {len} bytes must have a {bits}-bit length: its second byte says \
         {code}, then {more} bytes hold the length; it says {} (the classic mistake, \
         `len as u8`, writes the low byte of the length instead)",
        head[1] & 0x7f
    );
    let mut length = vec![0; more];
    if let Err(error) = std::io::Read::read_exact(stream, &mut length) {
        panic!(
            "expected the {bits}-bit length of the echo: {}",
            what_happened(&error)
        );
    }
    let announced = length
        .iter()
        .fold(0u64, |n, byte| n << 8 | u64::from(*byte));
    assert!(
        announced == len as u64,
        "the echo of {len} bytes announces {announced} bytes: after the {code}, the next \
         {more} bytes must hold the length, {len} (the classic mistake, `len as u8`, writes \
         one byte of length and no more)"
    );
    let mut echo = vec![0; len];
    if let Err(error) = std::io::Read::read_exact(stream, &mut echo) {
        panic!(
            "expected the {len} bytes of the echo: {}",
            what_happened(&error)
        );
    }
    stream.end_of_unit();
    assert!(
        head[0] == FIN | opcode && echo == payload,
        "the echo of {len} bytes differs from what was sent"
    );
}

/// `len` bytes of text: `abcdefghijklmnopqrstuvwxyzabc...`.
fn text_of(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 26) as u8).collect()
}

pub fn echoes_a_text_message(server: &Server) {
    about(
        "RFC 6455, section 6 (sending and receiving data)",
        "ch03-frames/the-echo-server.md#the-echo-loop",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    chat.send("client", &mut client, true, TEXT, b"Hello");
    let echo = chat.receive("client", &mut client);
    assert!(
        echo == (Frame {
            fin: true,
            opcode: TEXT,
            payload: b"Hello".to_vec()
        }),
        "a text message comes back as it was sent: expected Text \"Hello\", got {echo:?}"
    );
    chat.send("client", &mut client, true, CLOSE, &1000u16.to_be_bytes());
    let close = chat.receive("client", &mut client);
    assert!(
        close.close_code() == Some(1000),
        "a close with code 1000 is answered with a close with 1000; got {close:?}"
    );
    chat.expect_end_of_stream("client", &mut client);
    chat.keep();
}

/// The masked "Hello" of RFC 6455, section 5.7, byte for byte, comes back as
/// the unmasked "Hello" of the same section.
pub fn rfc_masked_hello_comes_back_as_rfc_unmasked_hello(server: &Server) {
    about(
        "RFC 6455, section 5.7 (examples)",
        "ch03-frames/what-a-frame-looks-like.md#the-masked-hello-byte-by-byte",
    );
    let mut stream = ws_handshake(server.address);
    send_raw(
        &mut stream,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
    );
    let mut echo = [0; 7];
    if let Err(error) = std::io::Read::read_exact(&mut stream, &mut echo) {
        panic!(
            "expected the 7 bytes of the unmasked Hello: {}",
            what_happened(&error)
        );
    }
    stream.end_of_unit();
    assert!(
        echo == [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
        "expected 81 05 48 65 6c 6c 6f, the unmasked Hello; got {echo:02x?}"
    );
    close_with(&mut stream, 1000);
}

/// The masked "Hello" again, cut in three, as the network may cut it: 4
/// bytes, 5, then 2, with a pause after each. A server must keep what
/// came until the frame is whole. One that reads with `read_exact` on a
/// nonblocking socket loses the first 4 bytes, takes `21`, the third byte
/// of the key, for the first byte of a frame (RSV2 set), and closes a
/// healthy client with 1002.
pub fn a_frame_in_three_pieces_comes_back_whole(server: &Server) {
    about(
        "RFC 6455, section 5.2 (base framing protocol); TCP is a stream",
        "ch04-game-loop/nonblocking-sockets.md#the-classic-mistake",
    );
    let mut stream = ws_handshake(server.address);
    send_in_pieces(
        &mut stream,
        &[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ],
        &[4, 5],
        Duration::from_millis(50),
    );
    let echo = read_frame(&mut stream);
    assert!(
        echo.opcode == TEXT && echo.payload == b"Hello",
        "the frame came in three pieces; the echo is the whole \"Hello\"; got {echo:?}"
    );
    close_with(&mut stream, 1000);
}

/// Messages of up to 125 bytes: the length fits in the 7 bits of the
/// second byte.
pub fn short_messages_have_a_7_bit_length(server: &Server) {
    about(
        "RFC 6455, section 5.2 (payload length)",
        "ch03-frames/what-a-frame-looks-like.md#three-sizes-of-length",
    );
    let mut stream = ws_handshake(server.address);
    for len in [0, 1, 125] {
        for opcode in [TEXT, BINARY] {
            round_trip(&mut stream, opcode, &text_of(len));
        }
    }
    close_with(&mut stream, 1000);
}

/// 126 to 65535 bytes: the 7 bits say 126, and the next 2 bytes hold the
/// length. The classic mistake is `len as u8`: right up to 125 bytes, wrong
/// from 126 on.
pub fn messages_of_126_to_65535_bytes_have_a_16_bit_length(server: &Server) {
    about(
        "RFC 6455, section 5.2 (payload length: 126, then 16 bits)",
        "ch03-frames/what-a-frame-looks-like.md#the-classic-mistake-len-as-u8",
    );
    let mut stream = ws_handshake(server.address);
    for len in [126, 127, 128, 1000, 65535] {
        for opcode in [TEXT, BINARY] {
            round_trip_with_length(&mut stream, opcode, &text_of(len), 126);
        }
    }
    close_with(&mut stream, 1000);
}

/// 65536 bytes and more: the 7 bits say 127, and the next 8 bytes hold the
/// length.
pub fn messages_over_65535_bytes_have_a_64_bit_length(server: &Server) {
    about(
        "RFC 6455, section 5.2 (payload length: 127, then 64 bits)",
        "ch03-frames/what-a-frame-looks-like.md#three-sizes-of-length",
    );
    let mut stream = ws_handshake(server.address);
    for len in [65536, 100_000] {
        for opcode in [TEXT, BINARY] {
            round_trip_with_length(&mut stream, opcode, &text_of(len), 127);
        }
    }
    close_with(&mut stream, 1000);
}

pub fn echoes_a_binary_message(server: &Server) {
    about(
        "RFC 6455, section 5.6 (data frames)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    let mut stream = ws_handshake(server.address);
    let every_byte: Vec<u8> = (0..=255).collect();
    round_trip(&mut stream, BINARY, &every_byte);
    close_with(&mut stream, 1000);
}

pub fn a_pong_nobody_asked_for_is_ignored(server: &Server) {
    about(
        "RFC 6455, section 5.5.3 (an unsolicited pong needs no answer)",
        "ch03-frames/what-a-frame-looks-like.md#opcodes",
    );
    let mut stream = ws_handshake(server.address);
    send_frame(&mut stream, true, PONG, b"heartbeat");
    round_trip(&mut stream, TEXT, b"after the pong");
    close_with(&mut stream, 1000);
}

pub fn fragments_are_put_together(server: &Server) {
    about(
        "RFC 6455, section 5.4 (fragmentation)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    chat.send("client", &mut client, false, TEXT, b"Hel");
    chat.send("client", &mut client, false, CONTINUATION, b"");
    chat.send("client", &mut client, true, CONTINUATION, b"lo");
    let echo = chat.receive("client", &mut client);
    assert!(
        echo == (Frame {
            fin: true,
            opcode: TEXT,
            payload: b"Hello".to_vec()
        }),
        "three fragments make one message, which comes back whole: expected Text \"Hello\", got {echo:?}"
    );
    chat.send("client", &mut client, false, BINARY, b"\x00\x01");
    chat.send("client", &mut client, true, CONTINUATION, b"\x02");
    let echo = chat.receive("client", &mut client);
    assert!(
        echo == (Frame {
            fin: true,
            opcode: BINARY,
            payload: b"\x00\x01\x02".to_vec()
        }),
        "two fragments make one binary message: expected Binary [00, 01, 02], got {echo:?}"
    );
    chat.keep();
    close_with(&mut client, 1000);
}

/// The pong comes back before the message is finished.
pub fn a_ping_between_fragments_is_answered_at_once(server: &Server) {
    about(
        "RFC 6455, section 5.4 (control frames between fragments)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    chat.send("client", &mut client, false, TEXT, b"Hel");
    chat.send("client", &mut client, true, PING, b"still there?");
    let pong = chat.receive("client", &mut client);
    assert!(
        pong.opcode == PONG && pong.payload == b"still there?",
        "a ping between fragments is answered at once, before the message ends; got {pong:?}"
    );
    chat.send("client", &mut client, true, CONTINUATION, b"lo");
    let echo = chat.receive("client", &mut client);
    assert!(
        echo.opcode == TEXT && echo.payload == b"Hello",
        "then the message, whole: expected Text \"Hello\", got {echo:?}"
    );
    chat.keep();
    close_with(&mut client, 1000);
}

/// A continuation right after a finished message has nothing to continue:
/// the message is answered, then the connection fails.
pub fn a_continuation_after_a_finished_message_gets_1002(server: &Server) {
    about(
        "RFC 6455, section 5.4 (fragmentation)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let mut bytes = client_frame(true, TEXT, b"Hello");
    bytes.extend(client_frame(true, CONTINUATION, b"!"));
    let mut stream = ws_handshake(server.address);
    send_raw(&mut stream, &bytes);
    let echo = read_frame(&mut stream);
    assert!(
        echo.payload == b"Hello",
        "the message before the continuation is answered; got {echo:?}"
    );
    expect_close(&mut stream, 1002);
}

pub fn a_text_character_split_across_fragments(server: &Server) {
    about(
        "RFC 6455, section 5.6 (text is UTF-8 across the whole message)",
        "ch03-frames/from-frames-to-messages.md#utf-8-checked-as-it-arrives",
    );
    let mut stream = ws_handshake(server.address);
    send_frame(&mut stream, false, TEXT, b"caf\xc3");
    send_frame(&mut stream, true, CONTINUATION, b"\xa9");
    let echo = read_frame(&mut stream);
    assert!(
        echo.payload == "café".as_bytes(),
        "\"é\" is two bytes, one in each fragment: the message is valid, and comes back; got {echo:?}"
    );
    close_with(&mut stream, 1000);
}

/// The client announces one byte more than the largest message, and sends
/// nothing more: the answer comes from the header alone.
pub fn an_oversized_frame_gets_1009_before_its_payload_is_sent(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1009: message too big)",
        "ch03-frames/reading-a-frame.md#the-frame-decided-from-the-header",
    );
    let mut chat = Transcript::new();
    let mut client = chat.open("client", server.address);
    let len = server.max_message_len() as u64 + 1;
    chat.send_raw(
        "client",
        &mut client,
        &format!(
            "a header announcing {} MiB + 1 byte of binary, and no payload",
            len >> 20
        ),
        &frame_header(FIN | BINARY, len, Some(next_mask())),
    );
    let close = chat.receive("client", &mut client);
    assert!(
        close.close_code() == Some(1009),
        "a frame over the limit is refused from its header, with close code 1009; got {close:?}"
    );
    chat.keep();
}

/// The largest message in fragments of 1 MiB, then one byte more.
pub fn a_fragmented_message_over_the_limit_gets_1009(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1009: message too big)",
        "ch03-frames/reading-a-frame.md#the-frame-decided-from-the-header",
    );
    let mut stream = ws_handshake(server.address);
    let mebibyte = vec![b'x'; 1 << 20];
    send_frame(&mut stream, false, TEXT, &mebibyte);
    for _ in 1..server.max_message_len() >> 20 {
        send_frame(&mut stream, false, CONTINUATION, &mebibyte);
    }
    send_frame(&mut stream, true, CONTINUATION, b"!");
    let close = read_close(&mut stream);
    assert!(
        close.close_code() == Some(1009),
        "a message one byte over the limit, in fragments, gets close code 1009; got {close:?}"
    );
}

pub fn a_frame_in_the_same_write_as_the_request_is_answered(server: &Server) {
    about(
        "RFC 6455, section 4.2.1 (frames may follow the handshake at once)",
        "ch02-handshake/after-the-101.md#after-the-101",
    );
    let address = server.address;
    let mut stream = connect(address);
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend(client_frame(true, TEXT, b"early"));
    send_raw(&mut stream, &bytes);
    check_101(&read_http_head(&mut stream));
    let echo = read_frame(&mut stream);
    assert!(
        echo.payload == b"early",
        "the frame that came with the request is answered; got {echo:?}"
    );
    close_with(&mut stream, 1000);
}

pub fn a_frame_arriving_one_byte_at_a_time(server: &Server) {
    about(
        "RFC 6455, section 5.2 (base framing protocol); TCP is a stream",
        "ch04-game-loop/tests.md#the-promises",
    );
    let mut stream = ws_handshake(server.address);
    let payload = vec![b'x'; 200]; // a 16-bit length, so a header of 8 bytes
    for byte in client_frame(true, TEXT, &payload) {
        send_raw(&mut stream, &[byte]);
        thread::sleep(Duration::from_micros(500));
    }
    let echo = read_frame(&mut stream);
    assert!(
        echo.payload == payload,
        "a frame sent one byte per TCP segment comes back whole; got {echo:?}"
    );
    close_with(&mut stream, 1000);
}

pub fn a_client_vanishing_mid_frame_does_not_stop_the_server(server: &Server) {
    about(
        "RFC 6455, section 7.1.5 (the connection closes without a close frame)",
        "ch04-game-loop/one-client.md#a-client-that-vanishes",
    );
    let address = server.address;
    let frame = client_frame(true, TEXT, b"Hello, is anybody there?");
    for cut in [1, 2, 6, 10] {
        let mut stream = ws_handshake(address);
        send_raw(&mut stream, &frame[..cut]);
        stream.shutdown(Shutdown::Both).unwrap();
    }
    let mut stream = ws_handshake(address);
    round_trip(&mut stream, TEXT, b"next");
    close_with(&mut stream, 1000);
}

pub fn a_client_leaving_without_a_close_frame_does_not_stop_the_server(server: &Server) {
    about(
        "RFC 6455, section 7.1.5 (the connection closes without a close frame)",
        "ch04-game-loop/one-client.md#a-client-that-vanishes",
    );
    let address = server.address;
    let mut stream = ws_handshake(address);
    // Wait for it to come back, so that, in a chat, it went round before the
    // next client arrives.
    round_trip(&mut stream, TEXT, b"bye");
    drop(stream);
    let mut stream = ws_handshake(address);
    round_trip(&mut stream, TEXT, b"next");
    close_with(&mut stream, 1000);
}

/// The deadline for the HTTP request does not apply to the WebSocket after
/// it: a conversation may be quiet for as long as the client likes.
pub fn a_quiet_websocket_is_not_cut_off(server: &Server) {
    about(
        "RFC 6455, section 5.5.2 (a connection stays open until closed)",
        "ch03-frames/the-echo-server.md#the-echo-loop",
    );
    let mut stream = ws_handshake(server.address);
    thread::sleep(server.request_timeout() + Duration::from_millis(500));
    round_trip(&mut stream, TEXT, b"still here");
    close_with(&mut stream, 1000);
}
