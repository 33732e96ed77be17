//! The JSON chat over real TCP: names, join and leave notices, messages
//! stamped with their sender, and every refusal, which comes as an error
//! message on a connection that stays open. Then the game loop's promises,
//! for clients that joined: no client waits for another, not for a quiet
//! one, a slow one, one that never reads, or one that vanishes halfway
//! through a frame; and the rules of WebSocket framing whose answer depends
//! on the loop (when it reads, when it writes, when it hangs up).
//!
//! This file is a module of each chat stage's test file (`step_05.rs`,
//! `step_06.rs`, ...), which says which stage `stage` is and how `server()`
//! starts it: stage 6 changes only how the loop waits, so every promise of
//! stage 5 must go on holding after it. (`websocket.rs` checks the framing
//! rules against an echo, which the chat is not.)

use super::{server, stage};
use insta::assert_snapshot;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use ws_tests::*;

/// Reads one text message and returns it as a string.
fn read_text(stream: &mut TcpStream) -> String {
    let frame = read_frame(stream);
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

fn send_text(stream: &mut TcpStream, text: &str) {
    send_frame(stream, true, TEXT, text.as_bytes());
}

/// Connects, joins as `name`, and returns the stream and the welcome.
fn join(address: SocketAddr, name: &str) -> (TcpStream, String) {
    let mut stream = ws_handshake(address);
    send_text(
        &mut stream,
        &format!(r#"{{"type":"join","name":"{name}"}}"#),
    );
    let welcome = read_text(&mut stream);
    (stream, welcome)
}

// What the chat says, for names and texts that JSON need not escape.

/// What a client sends to say `text`.
fn message(text: &str) -> String {
    format!(r#"{{"type":"message","text":"{text}"}}"#)
}

/// What everyone gets when `from` says `text`.
fn said(from: &str, text: &str) -> String {
    format!(r#"{{"type":"message","from":"{from}","text":"{text}"}}"#)
}

fn joined(name: &str) -> String {
    format!(r#"{{"type":"join","name":"{name}"}}"#)
}

fn left(name: &str) -> String {
    format!(r#"{{"type":"leave","name":"{name}"}}"#)
}

/// A transcript of one chat: each client sends (`->`) or receives (`<-`).
struct Chat {
    lines: Vec<String>,
}

impl Chat {
    fn sends(&mut self, who: &str, stream: &mut TcpStream, text: &str) {
        send_text(stream, text);
        self.lines.push(format!("{who} -> {text}"));
    }

    fn receives(&mut self, who: &str, stream: &mut TcpStream) {
        let text = read_text(stream);
        self.lines.push(format!("  {who} <- {text}"));
    }
}

// The chat protocol.

// ANCHOR: two_clients
#[test]
fn two_clients_join_chat_and_leave() {
    let address = server();
    let mut chat = Chat { lines: Vec::new() };
    let mut ann = ws_handshake(address);
    let mut bob = ws_handshake(address);
    chat.sends("ann", &mut ann, r#"{"type":"join","name":"ann"}"#);
    chat.receives("ann", &mut ann);
    chat.sends("bob", &mut bob, r#"{"type":"join","name":"bob"}"#);
    chat.receives("bob", &mut bob);
    chat.receives("ann", &mut ann);
    chat.sends("ann", &mut ann, r#"{"type":"message","text":"hi bob"}"#);
    chat.receives("ann", &mut ann);
    chat.receives("bob", &mut bob);
    chat.sends(
        "bob",
        &mut bob,
        r#"{"type":"message","text":"hi ann, bye"}"#,
    );
    chat.receives("ann", &mut ann);
    chat.receives("bob", &mut bob);
    close_with(&mut bob, 1000);
    chat.lines.push("bob closes".to_string());
    chat.receives("ann", &mut ann);
    assert_snapshot!(chat.lines.join("\n"));
}
// ANCHOR_END: two_clients

/// A client whose connection just drops, without a close frame, still
/// produces a leave notice, and the others chat on.
#[test]
fn three_clients_and_an_abrupt_disconnect() {
    let address = server();
    let mut chat = Chat { lines: Vec::new() };
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    chat.lines.push("ann and bob join".to_string());
    chat.receives("ann", &mut ann); // bob joined
    chat.lines.push("cat joins".to_string());
    let (cat, welcome) = join(address, "cat");
    chat.lines.push(format!("  cat <- {welcome}"));
    chat.receives("ann", &mut ann);
    chat.receives("bob", &mut bob);
    cat.shutdown(Shutdown::Both).unwrap();
    chat.lines.push("cat's connection drops".to_string());
    chat.receives("ann", &mut ann);
    chat.receives("bob", &mut bob);
    chat.sends(
        "bob",
        &mut bob,
        r#"{"type":"message","text":"where did cat go?"}"#,
    );
    chat.receives("ann", &mut ann);
    chat.receives("bob", &mut bob);
    assert_snapshot!(chat.lines.join("\n"));
}

/// Each refusal is an error message to the one client, which stays
/// connected and can go on to join and chat.
#[test]
fn refusals_are_error_messages_and_the_connection_stays() {
    let address = server();
    let (_ann, _) = join(address, "ann");
    let mut client = ws_handshake(address);
    let attempts = [
        "not json at all",
        r#"{"type":"message","text":"before joining"}"#,
        r#"{"text":"no type"}"#,
        r#"{"type":"dance"}"#,
        r#"["type","join"]"#,
        r#"{"type":"join"}"#,
        r#"{"type":"join","name":42}"#,
        r#"{"type":"join","name":"ann"}"#,
        r#"{"type":"join","name":"ANN"}"#,
        r#"{"type":"join","name":"   "}"#,
        r#"{"type":"join","name":"abcdefghijklmnopqrstuvwxyz1234567"}"#,
        r#"{"type":"join","name":"new\nline"}"#,
        r#"{"type":"join","name":"ann\u200b"}"#,
        r#"{"type":"join","name":"\u202enna"}"#,
        r#"{"type":"join","name":"\u2066ann\u2069"}"#,
        r#"{"type":"join","name":"a","name":"b"}"#,
        r#"{"type":"join","name":"zoë"} trailing"#,
    ];
    let mut lines = Vec::new();
    for attempt in attempts {
        send_text(&mut client, attempt);
        lines.push(format!("{attempt}\n  <- {}", read_text(&mut client)));
    }
    send_frame(&mut client, true, BINARY, b"\x00\x01");
    lines.push(format!("(binary 00 01)\n  <- {}", read_text(&mut client)));
    // Still connected: now a proper join works, twice does not.
    send_text(
        &mut client,
        r#"{"type":"join","name":"  Zoë  ","extra":"ignored"}"#,
    );
    lines.push(format!("a good join\n  <- {}", read_text(&mut client)));
    send_text(&mut client, r#"{"type":"join","name":"zoe"}"#);
    lines.push(format!("joining again\n  <- {}", read_text(&mut client)));
    assert_snapshot!(lines.join("\n"));
}

/// A name that is HTML travels as text: the server neither refuses nor
/// changes it, and JSON escaping keeps every message one valid object.
#[test]
fn hostile_names_and_texts_travel_as_plain_text() {
    let address = server();
    let name = "<img src=x onerror=alert(1)>";
    let (mut mallory, welcome) = join(address, name);
    assert_eq!(
        welcome,
        r#"{"type":"welcome","name":"<img src=x onerror=alert(1)>","users":["<img src=x onerror=alert(1)>"]}"#
    );
    send_text(
        &mut mallory,
        r#"{"type":"message","text":"\"quoted\" \\ back\\slash \n</script>\u0001 😀"}"#,
    );
    assert_snapshot!(read_text(&mut mallory));
}

/// Only clients that joined are in the chat: one that is connected but has
/// no name yet gets nothing, and its departure is no news.
#[test]
fn only_joined_clients_hear_the_chat() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let mut lurker = ws_handshake(address);
    send_text(&mut ann, r#"{"type":"message","text":"anyone?"}"#);
    assert_eq!(
        read_text(&mut ann),
        r#"{"type":"message","from":"ann","text":"anyone?"}"#
    );
    expect_silence(&mut lurker, Duration::from_millis(200));
    close_with(&mut lurker, 1000);
    let (mut bob, _) = join(address, "bob");
    // Ann's next message is bob's join: no leave for the lurker came first.
    assert_eq!(read_text(&mut ann), r#"{"type":"join","name":"bob"}"#);
    close_with(&mut bob, 1000);
}

/// A name is free again once its owner has left.
#[test]
fn a_name_is_free_again_after_its_owner_leaves() {
    let address = server();
    let (mut first, _) = join(address, "ann");
    close_with(&mut first, 1000);
    let (_second, welcome) = join(address, "ann");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","name":"ann","users":["ann"]}"#
    );
}

/// Chat messages are small: a frame over the limit is refused from its
/// header with close code 1009, and the others carry on.
#[test]
fn a_message_over_the_chat_limit_gets_1009() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    read_text(&mut ann); // bob joined
    let huge = vec![b' '; stage::MAX_CHAT_MESSAGE_LEN + 1];
    send_raw(
        &mut bob,
        &frame_header(0x81, huge.len() as u64, Some(next_mask())),
    );
    expect_close(&mut bob, 1009);
    assert_eq!(read_text(&mut ann), r#"{"type":"leave","name":"bob"}"#);
}

/// A broken rule of the WebSocket protocol still ends that one connection,
/// with the right code, and a leave notice for the others, who chat on.
#[test]
fn a_protocol_error_ends_only_that_connection() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let cases: [(&str, Vec<u8>, u16); 4] = [
        (
            "text that is not UTF-8",
            client_frame(true, TEXT, b"{\"type\":\"message\",\"text\":\"caf\xe9\"}"),
            1007,
        ),
        (
            "an unmasked frame",
            vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'],
            1002,
        ),
        (
            "a reserved bit",
            client_frame_raw(FIN | RSV1 | TEXT, message("rsv1").as_bytes()),
            1002,
        ),
        ("a reserved opcode", client_frame(true, 0x3, b""), 1002),
    ];
    for (i, (what, bytes, code)) in cases.into_iter().enumerate() {
        let name = format!("bob{i}");
        let (mut bob, _) = join(address, &name);
        assert_eq!(read_text(&mut ann), joined(&name));
        send_raw(&mut bob, &bytes);
        let close = read_close(&mut bob);
        assert_eq!(close.close_code(), Some(code), "{what}: {close:?}");
        send_frame(&mut bob, true, CLOSE, &code.to_be_bytes());
        expect_end_of_stream(&mut bob);
        assert_eq!(read_text(&mut ann), left(&name), "{what}");
        send_text(&mut ann, &message("still here"));
        assert_eq!(read_text(&mut ann), said("ann", "still here"), "{what}");
    }
}

/// A joined client that stops reading is dropped once it falls too far
/// behind: the others get every message meanwhile, then see it leave, and
/// chat on; the silent client's connection ends instead of its messages
/// piling up in the server's memory.
#[test]
fn a_client_too_slow_to_keep_up_is_dropped_with_a_leave_notice() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    assert_eq!(read_text(&mut ann), joined("bob"));
    let (mut silent, _) = join(address, "silent");
    for client in [&mut ann, &mut bob] {
        assert_eq!(read_text(client), joined("silent"));
    }
    // Big messages, until the server has given up on the silent client:
    // its allowance, plus what the sockets' buffers can hold.
    let text = "x".repeat(stage::MAX_CHAT_MESSAGE_LEN - 100);
    let big = said("ann", &text);
    let most = (stage::MAX_UNSENT_BYTES + 32 * 1024 * 1024) / text.len();
    let mut sent = 0;
    loop {
        assert!(sent < most, "the silent client was never dropped");
        send_text(&mut ann, &message(&text));
        sent += 1;
        let heard = read_text(&mut ann);
        if heard == left("silent") {
            break;
        }
        assert!(heard == big, "{heard:.80}");
        let heard = read_text(&mut bob);
        assert!(heard == big, "{heard:.80}");
    }
    // Bob hears the notice in the same place; the message ann sent last
    // comes after it, to both.
    assert_eq!(read_text(&mut bob), left("silent"));
    for client in [&mut ann, &mut bob] {
        let heard = read_text(client);
        assert!(heard == big, "{heard:.80}");
    }
    send_text(&mut ann, &message("carry on"));
    for client in [&mut ann, &mut bob] {
        assert_eq!(read_text(client), said("ann", "carry on"));
    }
    // The silent client was hung up on: after what its buffers held, its
    // stream ends.
    let mut sink = Vec::new();
    let ended = match silent.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(ended, "the silent client was not disconnected");
    assert!(sink.len() < sent * big.len(), "it got everything after all");
}

#[test]
fn get_slash_serves_the_chat_page() {
    let response = exchange(server(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK");
    assert!(response.contains("new WebSocket("));
    assert!(response.contains("textContent"));
    assert!(
        !response.contains("innerHTML ="),
        "show names and messages as text only"
    );
}

// The game loop's promises: no client waits for another.

/// A client that joined and says nothing, one that connected and never
/// joined, and one that sent half a request: none of them makes the next
/// client wait, not even until the half request's deadline.
#[test]
fn a_quiet_client_does_not_make_the_next_one_wait() {
    let address = server();
    let (_quiet, _) = join(address, "quiet");
    let _lurker = ws_handshake(address);
    let _half_a_request = {
        let mut stream = connect(address);
        send_raw(&mut stream, b"GET / HTTP/1.1\r\nUpg");
        stream
    };
    let started = Instant::now();
    let (mut next, welcome) = join(address, "next");
    assert_eq!(
        welcome,
        r#"{"type":"welcome","name":"next","users":["quiet","next"]}"#
    );
    send_text(&mut next, &message("no waiting"));
    assert_eq!(read_text(&mut next), said("next", "no waiting"));
    // Not a measure of speed: a server that served the next client only
    // once the half request timed out would take this long.
    let waited = started.elapsed();
    assert!(waited < stage::REQUEST_TIMEOUT / 2, "waited {waited:?}");
}

/// A client sends its request, its join and a message one byte at a time,
/// while another chats: the other's messages go round at once (it reads
/// each before the slow client's next byte leaves, so a server that waited
/// for the slow client would wait forever), and the slow client's join and
/// message arrive whole.
#[test]
fn a_client_trickling_bytes_holds_up_nobody() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let mut slow = connect(address);
    slow.set_nodelay(true).unwrap();
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend(client_frame(true, TEXT, joined("slow").as_bytes()));
    bytes.extend(client_frame(true, TEXT, message("slowly").as_bytes()));
    // What ann hears besides her own messages.
    let mut news = Vec::new();
    for (i, byte) in bytes.iter().enumerate() {
        send_raw(&mut slow, &[*byte]);
        if i % 40 == 0 {
            send_text(&mut ann, &message("still there?"));
            loop {
                let heard = read_text(&mut ann);
                if heard == said("ann", "still there?") {
                    break;
                }
                news.push(heard);
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
    while news.len() < 2 {
        news.push(read_text(&mut ann));
    }
    assert_eq!(news, [joined("slow"), said("slow", "slowly")]);
    check_101(&read_http_head(&mut slow));
    assert_eq!(
        read_text(&mut slow),
        r#"{"type":"welcome","name":"slow","users":["ann","slow"]}"#
    );
    // Once it had joined, the slow client heard ann too.
    let mut heard = read_text(&mut slow);
    while heard == said("ann", "still there?") {
        heard = read_text(&mut slow);
    }
    assert_eq!(heard, said("slow", "slowly"));
}

/// How many bytes the system's buffers hold for a loopback connection
/// whose reader does not read: what a client can fall behind before the
/// server has to keep anything for it.
fn socket_buffers_hold() -> usize {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _reader = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let (mut writer, _) = listener.accept().unwrap();
    writer.set_nonblocking(true).unwrap();
    let chunk = [0; 64 * 1024];
    let mut held = 0;
    // The buffers grow for a moment after they first fill up.
    for _ in 0..3 {
        while let Ok(count) = std::io::Write::write(&mut writer, &chunk) {
            held += count;
        }
        thread::sleep(Duration::from_millis(50));
    }
    held
}

/// A client that falls behind, by more than the sockets' buffers hold but
/// less than the server allows, and then reads, gets every message: the
/// server goes on writing what waits for it even when nothing else happens,
/// as soon as its socket has room again.
#[test]
fn a_client_that_reads_late_still_gets_everything() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (mut late, _) = join(address, "late");
    assert_eq!(read_text(&mut ann), joined("late"));
    let text = "x".repeat(stage::MAX_CHAT_MESSAGE_LEN - 100);
    let big = said("ann", &text);
    let count = (socket_buffers_hold() + stage::MAX_UNSENT_BYTES / 2) / big.len();
    for _ in 0..count {
        send_text(&mut ann, &message(&text));
        let heard = read_text(&mut ann);
        assert!(heard == big, "{heard:.80}");
    }
    // Nobody sends anything more: only the late reader's reads can make
    // room for the rest of its messages.
    for i in 0..count {
        let heard = read_text(&mut late);
        assert!(heard == big, "message {i}: {heard:.80}");
    }
    send_text(&mut late, &message("caught up"));
    assert_eq!(read_text(&mut ann), said("late", "caught up"));
}

/// Clients vanish in every way, halfway through a request or a frame,
/// joined or not; the chat goes on for the ones who stay, who hear that
/// each one who had joined has left.
#[test]
fn clients_vanishing_mid_frame_do_not_disturb_the_others() {
    let address = server();
    let (mut stayer, _) = join(address, "stayer");
    let frame = client_frame(true, TEXT, message("never finished").as_bytes());
    for cut in [1, 2, 6, 10] {
        let name = format!("leaver{cut}");
        let (mut leaver, _) = join(address, &name);
        assert_eq!(read_text(&mut stayer), joined(&name));
        send_raw(&mut leaver, &frame[..cut]);
        leaver.shutdown(Shutdown::Both).unwrap();
        let mut lurker = ws_handshake(address);
        send_raw(&mut lurker, &frame[..cut]);
        drop(lurker);
        let mut half_request = connect(address);
        send_raw(
            &mut half_request,
            &upgrade_request(address).as_bytes()[..cut * 10],
        );
        drop(half_request);
        assert_eq!(read_text(&mut stayer), left(&name));
        send_text(&mut stayer, &message("still here"));
        assert_eq!(read_text(&mut stayer), said("stayer", "still here"));
    }
}

/// 200 clients join, each sends one message, and every one gets all 200,
/// in the same order as everyone else: the order the server chose.
#[test]
fn two_hundred_clients_each_get_every_message() {
    let address = server();
    let names: Vec<String> = (0..200).map(|i| format!("user{i}")).collect();
    let mut clients: Vec<TcpStream> = names.iter().map(|name| join(address, name).0).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        send_text(client, &message(&format!("message {i}")));
    }
    let mut expected: Vec<String> = (0..200)
        .map(|i| said(&names[i], &format!("message {i}")))
        .collect();
    expected.sort();
    let mut first_order: Option<Vec<String>> = None;
    for (i, client) in clients.iter_mut().enumerate() {
        // First the joins of everyone who came after it.
        for name in &names[i + 1..] {
            assert_eq!(read_text(client), joined(name), "client {i}");
        }
        let received: Vec<String> = (0..200).map(|_| read_text(client)).collect();
        let mut sorted = received.clone();
        sorted.sort();
        assert_eq!(sorted, expected, "client {i}");
        match &first_order {
            None => first_order = Some(received),
            Some(order) => assert_eq!(&received, order, "client {i}"),
        }
    }
}

/// The deadline of the HTTP request wakes the loop on its own, on a server
/// with nothing else to do: a client that never finishes its request is cut
/// off, with no answer. A joined client may stay quiet for longer than that:
/// the deadline is the request's, not the WebSocket's.
#[test]
fn an_unfinished_request_is_cut_off_but_a_quiet_websocket_is_not() {
    let address = server();
    let (mut quiet, _) = join(address, "quiet");
    let mut half_a_request = connect(address);
    half_a_request
        .set_read_timeout(Some(stage::REQUEST_TIMEOUT + Duration::from_secs(2)))
        .unwrap();
    send_raw(&mut half_a_request, b"GET / HTTP/1.1\r\nHost: x\r\n");
    let mut answer = Vec::new();
    match half_a_request.read_to_end(&mut answer) {
        Ok(_) => {}
        Err(error) if error.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("not cut off at the request's deadline: {error}"),
    }
    assert_eq!(String::from_utf8_lossy(&answer), "");
    thread::sleep(Duration::from_millis(500)); // well past the deadline
    send_text(&mut quiet, &message("still here"));
    assert_eq!(read_text(&mut quiet), said("quiet", "still here"));
}

/// A client that sends its whole request and then closes its side (a
/// half-close: `shutdown(Write)`) still reads the whole answer.
#[test]
fn a_client_that_half_closes_after_its_request_still_gets_the_answer() {
    half_closing_clients_get_their_answers(server());
}

// The rules of WebSocket framing whose answer depends on the loop.

/// The request, the join and a message in one write: the loop must go on
/// from the handshake to the frames behind it in the same bytes, without
/// waiting for more to arrive.
#[test]
fn frames_in_the_same_write_as_the_request_are_answered() {
    let address = server();
    let mut stream = connect(address);
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend(client_frame(true, TEXT, joined("early").as_bytes()));
    bytes.extend(client_frame(true, TEXT, message("early bird").as_bytes()));
    send_raw(&mut stream, &bytes);
    check_101(&read_http_head(&mut stream));
    assert_eq!(
        read_text(&mut stream),
        r#"{"type":"welcome","name":"early","users":["early"]}"#
    );
    assert_eq!(read_text(&mut stream), said("early", "early bird"));
    close_with(&mut stream, 1000);
}

#[test]
fn a_frame_arriving_one_byte_at_a_time() {
    let (mut stream, _) = join(server(), "slow");
    // No Nagle: each one-byte write leaves as its own TCP segment.
    stream.set_nodelay(true).unwrap();
    let text = "x".repeat(200); // a 16-bit length, so a header of 8 bytes
    for byte in client_frame(true, TEXT, message(&text).as_bytes()) {
        send_raw(&mut stream, &[byte]);
        thread::sleep(Duration::from_micros(500));
    }
    assert_eq!(read_text(&mut stream), said("slow", &text));
    close_with(&mut stream, 1000);
}

/// The pong comes back before the message is finished.
#[test]
fn a_ping_between_fragments_is_answered_at_once() {
    let (mut stream, _) = join(server(), "ann");
    send_frame(&mut stream, false, TEXT, br#"{"type":"message","#);
    send_frame(&mut stream, true, PING, b"still there?");
    let pong = read_frame(&mut stream);
    assert_eq!(
        (pong.opcode, &pong.payload[..]),
        (PONG, &b"still there?"[..])
    );
    send_frame(&mut stream, true, CONTINUATION, br#""text":"hi"}"#);
    assert_eq!(read_text(&mut stream), said("ann", "hi"));
    close_with(&mut stream, 1000);
}

/// The closing handshake: the same code back, then the server hangs up,
/// and the others hear that the client left.
#[test]
fn a_close_is_answered_with_the_same_code_then_the_server_hangs_up() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    for code in [1000, 1001, 3000, 4999] {
        let name = format!("bob{code}");
        let (mut bob, _) = join(address, &name);
        assert_eq!(read_text(&mut ann), joined(&name));
        close_with(&mut bob, code);
        assert_eq!(read_text(&mut ann), left(&name));
    }
    let (mut bob, _) = join(address, "bob");
    assert_eq!(read_text(&mut ann), joined("bob"));
    send_frame(&mut bob, true, CLOSE, b"");
    assert_eq!(read_close(&mut bob).payload, b"");
    expect_end_of_stream(&mut bob);
    assert_eq!(read_text(&mut ann), left("bob"));
}

/// A leave notice goes out as soon as the leaver's close frame does, not when
/// its connection ends: a client may take its time to hang up (up to
/// `CLOSE_TIMEOUT`), and a loop that sleeps until a socket is ready would
/// otherwise keep the others waiting until then.
#[test]
fn a_leave_notice_does_not_wait_for_the_leaver_to_hang_up() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    for (name, goodbye) in [
        ("bob", client_frame(true, CLOSE, &1000u16.to_be_bytes())),
        ("cy", vec![0x81, 0x00]), // unmasked: the server closes with 1002
    ] {
        // The leaver neither reads nor hangs up: it just goes quiet.
        let (mut leaver, _) = join(address, name);
        assert_eq!(read_text(&mut ann), joined(name));
        send_raw(&mut leaver, &goodbye);
        ann.set_read_timeout(Some(stage::CLOSE_TIMEOUT / 2))
            .unwrap();
        assert_eq!(read_text(&mut ann), left(name));
        ann.set_read_timeout(Some(PATIENCE)).unwrap();
    }
}

/// What a client sends after its close frame, even in the same write, is
/// not for the chat.
#[test]
fn nothing_after_a_close_frame_reaches_the_chat() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    assert_eq!(read_text(&mut ann), joined("bob"));
    let mut bytes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    bytes.extend(client_frame(true, PING, b"too late"));
    bytes.extend(client_frame(true, TEXT, message("too late").as_bytes()));
    send_raw(&mut bob, &bytes);
    assert_eq!(read_close(&mut bob).close_code(), Some(1000));
    expect_end_of_stream(&mut bob);
    assert_eq!(read_text(&mut ann), left("bob"));
    send_text(&mut ann, &message("after bob"));
    assert_eq!(read_text(&mut ann), said("ann", "after bob"));
}

/// A message that came just before a broken rule, in the same write, still
/// goes round, to its sender too, before the close frame.
#[test]
fn a_message_just_before_a_broken_rule_still_goes_round() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    assert_eq!(read_text(&mut ann), joined("bob"));
    let mut bytes = client_frame(true, TEXT, message("last words").as_bytes());
    bytes.extend([0x81, 0x05, b'H', b'e', b'l', b'l', b'o']); // unmasked
    send_raw(&mut bob, &bytes);
    assert_eq!(read_text(&mut bob), said("bob", "last words"));
    expect_close(&mut bob, 1002);
    assert_eq!(read_text(&mut ann), said("bob", "last words"));
    assert_eq!(read_text(&mut ann), left("bob"));
}

/// The server closes the TCP connection first, right after its close frame,
/// without waiting for the client to close its side (RFC 6455, section
/// 7.1.1), whether the client or the server started the closing handshake.
#[test]
fn the_server_closes_the_connection_first() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let client_closes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    let server_closes = vec![0x81, 0x00]; // unmasked: refused
    for (bytes, code) in [(client_closes, 1000), (server_closes, 1002)] {
        let (mut bob, _) = join(address, "bob");
        assert_eq!(read_text(&mut ann), joined("bob"));
        send_raw(&mut bob, &bytes);
        assert_eq!(read_close(&mut bob).close_code(), Some(code));
        bob.set_read_timeout(Some(stage::CLOSE_TIMEOUT / 2))
            .unwrap();
        let mut byte = [0];
        let end = bob.read(&mut byte);
        assert_eq!(end.ok(), Some(0), "no end of stream after the close frame");
        assert_eq!(read_text(&mut ann), left("bob"));
    }
}

/// After its close frame the server reads what the client still sends,
/// instead of closing a socket with unread data: that would reset the
/// connection (TCP RST), and a reset can destroy the close frame on its way.
#[test]
fn the_server_hangs_up_cleanly_on_a_client_that_keeps_sending() {
    let (mut stream, _) = join(server(), "ann");
    // An unmasked frame, then 1 MiB more that the server will not want.
    let mut bytes = vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
    bytes.extend(client_frame(true, BINARY, &vec![0; 1 << 20]));
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || std::io::Write::write_all(&mut writer, &bytes));
    assert_eq!(read_close(&mut stream).close_code(), Some(1002));
    expect_end_of_stream(&mut stream); // the end of the stream, not a reset
    assert!(
        sending.join().unwrap().is_ok(),
        "the server stopped reading"
    );
}
