//! The JSON chat over real TCP: names, join and leave notices, messages
//! stamped with their sender, and every refusal, which comes as an error
//! message on a connection that stays open. Then the rules of WebSocket
//! framing whose answer depends on the loop (when it reads, when it
//! writes, when it hangs up), for clients that joined.
//!
//! What the server sends is compared as JSON written one way (see
//! [`crate::json`]): a server may order the keys of an object as it likes,
//! escape what it likes, and add fields the protocol does not name.

use crate::*;
use std::io::Read;
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::Duration;

/// The fields the chat protocol names (the table of chapter 5). A message
/// may carry others (chapter 5's exercises add some); the checks leave
/// them out.
const FIELDS: &[&str] = &["type", "name", "users", "from", "text", "reason"];

/// Reads one text message, which must be JSON; returns it written the one
/// way the checks compare (see [`crate::json`]), with the fields the
/// protocol names.
#[track_caller]
pub fn read_json(stream: &mut Conn) -> String {
    let text = read_text(stream);
    match json::canonical_only(&text, FIELDS) {
        Some(canonical) => canonical,
        None => panic!("every message of the chat is JSON; this is not: {text:.200}"),
    }
}

/// The name in a welcome, `{"type":"welcome","name":"ann","users":[...]}`.
pub fn welcome_of(text: &str) -> Option<String> {
    let rest = text.strip_prefix(r#"{"type":"welcome","name":""#)?;
    let (name, after) = rest.split_once(r#"","users":["#)?;
    after.ends_with("]}").then(|| name.to_string())
}

pub(crate) fn send_text(stream: &mut Conn, text: &str) {
    send_frame(stream, true, TEXT, text.as_bytes());
}

/// Connects, joins as `name`, and returns the stream and the welcome.
#[track_caller]
pub(crate) fn join(address: SocketAddr, name: &str) -> (Conn, String) {
    let mut stream = ws_handshake(address);
    send_text(
        &mut stream,
        &format!(r#"{{"type":"join","name":"{name}"}}"#),
    );
    let welcome = read_json(&mut stream);
    assert!(
        welcome_of(&welcome).is_some(),
        "a join as {name:?} gets a welcome, \
         {{\"type\":\"welcome\",\"name\":{name:?},\"users\":[...]}}; got {welcome}"
    );
    (stream, welcome)
}

// What the chat says, for names and texts that JSON need not escape.

/// What a client sends to say `text`.
pub(crate) fn message(text: &str) -> String {
    format!(r#"{{"type":"message","text":"{text}"}}"#)
}

/// What everyone gets when `from` says `text`.
pub(crate) fn said(from: &str, text: &str) -> String {
    format!(r#"{{"type":"message","from":"{from}","text":"{text}"}}"#)
}

pub(crate) fn joined(name: &str) -> String {
    format!(r#"{{"type":"join","name":"{name}"}}"#)
}

pub(crate) fn left(name: &str) -> String {
    format!(r#"{{"type":"leave","name":"{name}"}}"#)
}

fn welcome(name: &str, users: &[&str]) -> String {
    let users: Vec<String> = users.iter().map(|user| format!("{user:?}")).collect();
    format!(
        r#"{{"type":"welcome","name":"{name}","users":[{}]}}"#,
        users.join(",")
    )
}

/// Reads the next message, which must be `expected`.
#[track_caller]
fn expect(stream: &mut Conn, expected: &str, who: &str) {
    let heard = read_json(stream);
    assert!(
        heard == expected,
        "{who} should get {expected:.200}\n  but got {heard:.200}"
    );
}

/// `who` reads the next message, which must be `expected`, and the
/// transcript says so.
#[track_caller]
fn receives(chat: &mut Transcript, who: &str, stream: &mut Conn, expected: &str) {
    expect(stream, expected, who);
    chat.received(who, expected);
}

// The chat protocol.

// ANCHOR: two_clients
pub fn two_clients_join_chat_and_leave(server: &Server) {
    about(
        "the chat protocol of chapter 5",
        "ch05-json.md#the-protocol",
    );
    let address = server.address;
    let mut chat = Transcript::new();
    let mut ann = ws_handshake(address);
    let mut bob = ws_handshake(address);
    chat.send_text("ann", &mut ann, r#"{"type":"join","name":"ann"}"#);
    receives(&mut chat, "ann", &mut ann, &welcome("ann", &["ann"]));
    chat.send_text("bob", &mut bob, r#"{"type":"join","name":"bob"}"#);
    receives(&mut chat, "bob", &mut bob, &welcome("bob", &["ann", "bob"]));
    receives(&mut chat, "ann", &mut ann, &joined("bob"));
    chat.send_text("ann", &mut ann, r#"{"type":"message","text":"hi bob"}"#);
    receives(&mut chat, "ann", &mut ann, &said("ann", "hi bob"));
    receives(&mut chat, "bob", &mut bob, &said("ann", "hi bob"));
    chat.send_text(
        "bob",
        &mut bob,
        r#"{"type":"message","text":"hi ann, bye"}"#,
    );
    receives(&mut chat, "ann", &mut ann, &said("bob", "hi ann, bye"));
    receives(&mut chat, "bob", &mut bob, &said("bob", "hi ann, bye"));
    close_with(&mut bob, 1000);
    chat.note("bob closes");
    receives(&mut chat, "ann", &mut ann, &left("bob"));
    chat.keep();
}
// ANCHOR_END: two_clients

/// A message that is not JSON gets an error message, and the server goes
/// on serving everyone: one bad message must not stop the chat (as an
/// `unwrap()` on the client's input would).
pub fn one_bad_message_does_not_stop_the_chat(server: &Server) {
    about(
        "the chat protocol of chapter 5: refusals are messages",
        "ch05-json/the-chat.md#refusals-are-messages",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    expect(&mut ann, &joined("bob"), "ann");
    send_text(&mut bob, "not json at all");
    let answer = read_json(&mut bob);
    assert!(
        answer.starts_with(r#"{"type":"error","#),
        "a message that is not JSON gets {{\"type\":\"error\",\"reason\":\"...\"}}; got {answer}"
    );
    send_text(&mut ann, &message("still there?"));
    for (who, client) in [("ann", &mut ann), ("bob", &mut bob)] {
        expect(client, &said("ann", "still there?"), who);
    }
}

/// A client whose connection just drops, without a close frame, still
/// produces a leave notice, and the others chat on.
pub fn three_clients_and_an_abrupt_disconnect(server: &Server) {
    about(
        "the chat protocol of chapter 5: every way out gets a leave notice",
        "ch05-json/the-chat.md#every-way-out-gets-a-leave-notice",
    );
    let address = server.address;
    let mut chat = Transcript::new();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    chat.note("ann and bob join");
    receives(&mut chat, "ann", &mut ann, &joined("bob"));
    chat.note("cat joins");
    let (cat, welcome_cat) = join(address, "cat");
    assert!(
        welcome_cat == welcome("cat", &["ann", "bob", "cat"]),
        "cat's welcome lists everyone in the chat: got {welcome_cat}"
    );
    chat.received("cat", &welcome_cat);
    receives(&mut chat, "ann", &mut ann, &joined("cat"));
    receives(&mut chat, "bob", &mut bob, &joined("cat"));
    cat.shutdown(Shutdown::Both).unwrap();
    chat.note("cat's connection drops");
    receives(&mut chat, "ann", &mut ann, &left("cat"));
    receives(&mut chat, "bob", &mut bob, &left("cat"));
    chat.send_text(
        "bob",
        &mut bob,
        r#"{"type":"message","text":"where did cat go?"}"#,
    );
    receives(
        &mut chat,
        "ann",
        &mut ann,
        &said("bob", "where did cat go?"),
    );
    receives(
        &mut chat,
        "bob",
        &mut bob,
        &said("bob", "where did cat go?"),
    );
    chat.keep();
}

/// Each refusal is an error message to the one client, which stays
/// connected and can go on to join and chat. (The snapshot holds the
/// reference's reasons; any server must refuse each with an error.)
pub fn refusals_are_error_messages_and_the_connection_stays(server: &Server) {
    about(
        "the chat protocol of chapter 5: refusals are messages",
        "ch05-json/the-chat.md#refusals-are-messages",
    );
    let address = server.address;
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
    let refused = |answer: &str, attempt: &str| {
        assert!(
            answer.starts_with(r#"{"type":"error","#) && answer.contains(r#""reason":""#),
            "{attempt:.80} must be refused with {{\"type\":\"error\",\"reason\":\"...\"}}; \
             got {answer:.200}"
        );
    };
    let mut lines = Vec::new();
    for attempt in attempts {
        send_text(&mut client, attempt);
        let answer = read_json(&mut client);
        refused(&answer, attempt);
        lines.push(format!("{attempt}\n  <- {answer}"));
    }
    send_frame(&mut client, true, BINARY, b"\x00\x01");
    let answer = read_json(&mut client);
    refused(&answer, "a binary message");
    lines.push(format!("(binary 00 01)\n  <- {answer}"));
    // Still connected: now a proper join works, twice does not.
    send_text(
        &mut client,
        r#"{"type":"join","name":"  Zoë  ","extra":"ignored"}"#,
    );
    let answer = read_json(&mut client);
    assert!(
        answer == welcome("Zoë", &["ann", "Zoë"]),
        "after the refusals, a good join (its name trimmed, an extra field ignored) gets \
         its welcome; got {answer}"
    );
    lines.push(format!("a good join\n  <- {answer}"));
    send_text(&mut client, r#"{"type":"join","name":"zoe"}"#);
    let answer = read_json(&mut client);
    refused(&answer, "a second join");
    lines.push(format!("joining again\n  <- {answer}"));
    keep(lines.join("\n"));
}

/// A name that is HTML travels as text: the server neither refuses nor
/// changes it, and JSON escaping keeps every message one valid object.
pub fn hostile_names_and_texts_travel_as_plain_text(server: &Server) {
    about(
        "RFC 8259, section 7 (strings); the chat protocol of chapter 5",
        "ch05-json/strings.md#escaping-strings",
    );
    let address = server.address;
    let name = "<img src=x onerror=alert(1)>";
    let (mut mallory, welcome_text) = join(address, name);
    assert!(
        welcome_text == welcome(name, &[name]),
        "a name that is HTML is a name like any other; got {welcome_text}"
    );
    send_text(
        &mut mallory,
        r#"{"type":"message","text":"\"quoted\" \\ back\\slash \n</script>\u0001 😀"}"#,
    );
    let heard = read_json(&mut mallory);
    let expected = r#"{"type":"message","from":"<img src=x onerror=alert(1)>","text":"\"quoted\" \\ back\\slash \n</script>\u0001 😀"}"#;
    assert!(
        heard == expected,
        "the text travels unchanged (escaped as JSON needs):\n  expected {expected}\n  got      {heard}"
    );
    keep(heard);
}

/// Only clients that joined are in the chat: one that is connected but has
/// no name yet gets nothing, and its departure is no news.
pub fn only_joined_clients_hear_the_chat(server: &Server) {
    about(
        "the chat protocol of chapter 5",
        "ch05-json.md#the-protocol",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let mut lurker = ws_handshake(address);
    send_text(&mut ann, r#"{"type":"message","text":"anyone?"}"#);
    expect(&mut ann, &said("ann", "anyone?"), "ann");
    expect_silence(&mut lurker, Duration::from_millis(200));
    close_with(&mut lurker, 1000);
    let (mut bob, _) = join(address, "bob");
    // Ann's next message is bob's join: no leave for the lurker came first.
    expect(&mut ann, &joined("bob"), "ann");
    close_with(&mut bob, 1000);
}

/// A name is free again once its owner has left.
pub fn a_name_is_free_again_after_its_owner_leaves(server: &Server) {
    about(
        "the chat protocol of chapter 5: names",
        "ch05-json.md#the-protocol",
    );
    let address = server.address;
    let (mut first, _) = join(address, "ann");
    close_with(&mut first, 1000);
    let (_second, welcome_text) = join(address, "ann");
    assert!(
        welcome_text == welcome("ann", &["ann"]),
        "once ann has left, the name is free: expected {}, got {welcome_text}",
        welcome("ann", &["ann"])
    );
}

/// Chat messages are small: a frame over the limit is refused from its
/// header with close code 1009, and the others carry on.
pub fn a_message_over_the_chat_limit_gets_1009(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1009: message too big)",
        "ch05-json/limits.md#chat-messages-are-small",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    expect(&mut ann, &joined("bob"), "ann");
    let huge = server.max_message_len() + 1;
    send_raw(
        &mut bob,
        &frame_header(0x81, huge as u64, Some(next_mask())),
    );
    expect_close(&mut bob, 1009);
    expect(&mut ann, &left("bob"), "ann");
}

/// A broken rule of the WebSocket protocol still ends that one connection,
/// with the right code, and a leave notice for the others, who chat on.
pub fn a_protocol_error_ends_only_that_connection(server: &Server) {
    about(
        "RFC 6455, section 7.1.7 (failing the connection)",
        "ch05-json/the-chat.md#refusals-are-messages",
    );
    let address = server.address;
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
        expect(&mut ann, &joined(&name), "ann");
        send_raw(&mut bob, &bytes);
        let close = read_close(&mut bob);
        assert!(
            close.close_code() == Some(code),
            "{what} fails the connection with close code {code}; got {close:?}"
        );
        send_frame(&mut bob, true, CLOSE, &code.to_be_bytes());
        expect_end_of_stream(&mut bob);
        expect(&mut ann, &left(&name), "ann");
        send_text(&mut ann, &message("still here"));
        expect(&mut ann, &said("ann", "still here"), "ann");
    }
}

/// A joined client that stops reading is dropped once it falls too far
/// behind: the others get every message meanwhile, then see it leave, and
/// chat on; the silent client's connection ends instead of its messages
/// piling up in the server's memory.
pub fn a_client_too_slow_to_keep_up_is_dropped_with_a_leave_notice(server: &Server) {
    about(
        "(the game loop) a client that never reads",
        "ch05-json/the-chat.md#every-way-out-gets-a-leave-notice",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    expect(&mut ann, &joined("bob"), "ann");
    let (mut silent, _) = join(address, "silent");
    for (who, client) in [("ann", &mut ann), ("bob", &mut bob)] {
        expect(client, &joined("silent"), who);
    }
    // Big messages, until the server has given up on the silent client:
    // its allowance, plus what the sockets' buffers can hold.
    let text = "x".repeat(server.max_message_len() - 100);
    let big = said("ann", &text);
    let most = (server.max_unsent_bytes() + 32 * 1024 * 1024) / text.len();
    let mut sent = 0;
    loop {
        assert!(
            sent < most,
            "the silent client was never dropped, after {sent} messages of {} bytes",
            text.len()
        );
        send_text(&mut ann, &message(&text));
        sent += 1;
        let heard = read_json(&mut ann);
        if heard == left("silent") {
            break;
        }
        assert!(heard == big, "ann should hear her own message: {heard:.80}");
        let heard = read_json(&mut bob);
        assert!(heard == big, "bob should hear ann's message: {heard:.80}");
    }
    // Bob hears the notice in the same place; the message ann sent last
    // comes after it, to both.
    expect(&mut bob, &left("silent"), "bob");
    for (who, client) in [("ann", &mut ann), ("bob", &mut bob)] {
        let heard = read_json(client);
        assert!(
            heard == big,
            "{who} should hear ann's last message: {heard:.80}"
        );
    }
    send_text(&mut ann, &message("carry on"));
    for (who, client) in [("ann", &mut ann), ("bob", &mut bob)] {
        expect(client, &said("ann", "carry on"), who);
    }
    // The silent client was hung up on: after what its buffers held, its
    // stream ends.
    let (ended, got) = read_until_dropped(&mut silent);
    assert!(
        ended,
        "the silent client was never disconnected: the server announced that it left, but \
         kept its connection open (a client that is dropped must be removed)"
    );
    assert!(got < sent * big.len(), "it got everything after all");
}

pub fn get_slash_serves_the_chat_page(server: &Server) {
    about(
        "the HTML standard: textContent vs innerHTML",
        "ch05-json/the-page.md#the-page-text-never-html",
    );
    let response = http(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    response.expect_status(200, "`GET /` serves the chat page");
    assert!(
        response.body.contains("new WebSocket("),
        "the page opens a WebSocket: its script calls `new WebSocket(...)`"
    );
    assert!(
        response.body.contains("textContent"),
        "the page shows names and messages as text, with `textContent`"
    );
    assert!(
        !response.body.contains("innerHTML ="),
        "the page must show names and messages as text, never as HTML (`innerHTML =`)"
    );
}

// The rules of WebSocket framing whose answer depends on the loop.

/// The request, the join and a message in one write: the loop must go on
/// from the handshake to the frames behind it in the same bytes, without
/// waiting for more to arrive.
pub fn frames_in_the_same_write_as_the_request_are_answered(server: &Server) {
    about(
        "RFC 6455, section 4.2.1 (frames may follow the handshake at once)",
        "ch04-game-loop/one-client.md#the-request",
    );
    let address = server.address;
    let mut stream = connect(address);
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend(client_frame(true, TEXT, joined("early").as_bytes()));
    bytes.extend(client_frame(true, TEXT, message("early bird").as_bytes()));
    send_raw(&mut stream, &bytes);
    check_101(&read_http_head(&mut stream));
    expect(
        &mut stream,
        &welcome("early", &["early"]),
        "the early client",
    );
    expect(
        &mut stream,
        &said("early", "early bird"),
        "the early client",
    );
    close_with(&mut stream, 1000);
}

pub fn a_frame_arriving_one_byte_at_a_time(server: &Server) {
    about(
        "RFC 6455, section 5.2 (base framing protocol); TCP is a stream",
        "ch04-game-loop/tests.md#the-promises",
    );
    let (mut stream, _) = join(server.address, "slow");
    // No Nagle: each one-byte write leaves as its own TCP segment.
    stream.set_nodelay(true).unwrap();
    let text = "x".repeat(200); // a 16-bit length, so a header of 8 bytes
    for byte in client_frame(true, TEXT, message(&text).as_bytes()) {
        send_raw(&mut stream, &[byte]);
        thread::sleep(Duration::from_micros(500));
    }
    expect(&mut stream, &said("slow", &text), "the slow client");
    close_with(&mut stream, 1000);
}

/// The pong comes back before the message is finished.
pub fn a_ping_between_fragments_is_answered_at_once(server: &Server) {
    about(
        "RFC 6455, section 5.4 (control frames between fragments)",
        "ch03-frames/from-frames-to-messages.md#messages-in-pieces",
    );
    let (mut stream, _) = join(server.address, "ann");
    send_frame(&mut stream, false, TEXT, br#"{"type":"message","#);
    send_frame(&mut stream, true, PING, b"still there?");
    let pong = read_frame(&mut stream);
    assert!(
        (pong.opcode, &pong.payload[..]) == (PONG, &b"still there?"[..]),
        "a ping between fragments is answered at once, before the message ends; got {pong:?}"
    );
    send_frame(&mut stream, true, CONTINUATION, br#""text":"hi"}"#);
    expect(&mut stream, &said("ann", "hi"), "ann");
    close_with(&mut stream, 1000);
}

/// The closing handshake: the same code back, then the server hangs up,
/// and the others hear that the client left.
pub fn a_close_is_answered_with_the_same_code_then_the_server_hangs_up(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (close: echo the status code)",
        "ch05-json/the-chat.md#every-way-out-gets-a-leave-notice",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    for code in [1000, 1001, 3000, 4999] {
        let name = format!("bob{code}");
        let (mut bob, _) = join(address, &name);
        expect(&mut ann, &joined(&name), "ann");
        close_with(&mut bob, code);
        expect(&mut ann, &left(&name), "ann");
    }
    let (mut bob, _) = join(address, "bob");
    expect(&mut ann, &joined("bob"), "ann");
    send_frame(&mut bob, true, CLOSE, b"");
    let close = read_close(&mut bob);
    assert!(
        close.payload.is_empty(),
        "an empty close gets an empty close; got {close:?}"
    );
    expect_end_of_stream(&mut bob);
    expect(&mut ann, &left("bob"), "ann");
}

/// A leave notice goes out as soon as the leaver's close frame does, not when
/// its connection ends: a client may take its time to hang up (up to the
/// close timeout), and a loop that sleeps until a socket is ready would
/// otherwise keep the others waiting until then.
pub fn a_leave_notice_does_not_wait_for_the_leaver_to_hang_up(server: &Server) {
    about(
        "the chat protocol of chapter 5: every way out gets a leave notice",
        "ch05-json/the-chat.md#every-way-out-gets-a-leave-notice",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    for (name, goodbye) in [
        ("bob", client_frame(true, CLOSE, &1000u16.to_be_bytes())),
        ("cy", vec![0x81, 0x00]), // unmasked: the server closes with 1002
    ] {
        // The leaver neither reads nor hangs up: it just goes quiet.
        let (mut leaver, _) = join(address, name);
        expect(&mut ann, &joined(name), "ann");
        send_raw(&mut leaver, &goodbye);
        ann.set_read_timeout(Some(server.close_timeout() / 2))
            .unwrap();
        expect(&mut ann, &left(name), "ann");
        ann.set_read_timeout(Some(patience())).unwrap();
    }
}

/// What a client sends after its close frame, even in the same write, is
/// not for the chat.
pub fn nothing_after_a_close_frame_reaches_the_chat(server: &Server) {
    about(
        "RFC 6455, section 5.5.1 (nothing after a close frame)",
        "ch04-game-loop/writing-without-waiting.md#the-last-word",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    expect(&mut ann, &joined("bob"), "ann");
    let mut bytes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    bytes.extend(client_frame(true, PING, b"too late"));
    bytes.extend(client_frame(true, TEXT, message("too late").as_bytes()));
    send_raw(&mut bob, &bytes);
    let close = read_close(&mut bob);
    assert!(
        close.close_code() == Some(1000),
        "a close with 1000 is answered with 1000; got {close:?}"
    );
    expect_end_of_stream(&mut bob);
    expect(&mut ann, &left("bob"), "ann");
    send_text(&mut ann, &message("after bob"));
    expect(&mut ann, &said("ann", "after bob"), "ann");
}

/// A message that came just before a broken rule, in the same write, still
/// goes round, to its sender too, before the close frame.
pub fn a_message_just_before_a_broken_rule_still_goes_round(server: &Server) {
    about(
        "RFC 6455, section 7.1.7 (failing the connection)",
        "ch04-game-loop/writing-without-waiting.md#the-last-word",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    expect(&mut ann, &joined("bob"), "ann");
    let mut bytes = client_frame(true, TEXT, message("last words").as_bytes());
    bytes.extend([0x81, 0x05, b'H', b'e', b'l', b'l', b'o']); // unmasked
    send_raw(&mut bob, &bytes);
    expect(&mut bob, &said("bob", "last words"), "bob");
    expect_close(&mut bob, 1002);
    expect(&mut ann, &said("bob", "last words"), "ann");
    expect(&mut ann, &left("bob"), "ann");
}

/// The server closes the TCP connection first, right after its close frame,
/// without waiting for the client to close its side (RFC 6455, section
/// 7.1.1), whether the client or the server started the closing handshake.
pub fn the_server_closes_the_connection_first(server: &Server) {
    about(
        "RFC 6455, section 7.1.1 (the server closes the TCP connection first)",
        "ch04-game-loop/writing-without-waiting.md#closing-without-waiting",
    );
    let address = server.address;
    let (mut ann, _) = join(address, "ann");
    let client_closes = client_frame(true, CLOSE, &1000u16.to_be_bytes());
    let server_closes = vec![0x81, 0x00]; // unmasked: refused
    for (bytes, code) in [(client_closes, 1000), (server_closes, 1002)] {
        let (mut bob, _) = join(address, "bob");
        expect(&mut ann, &joined("bob"), "ann");
        send_raw(&mut bob, &bytes);
        let close = read_close(&mut bob);
        assert!(
            close.close_code() == Some(code),
            "expected a close with {code}; got {close:?}"
        );
        bob.set_read_timeout(Some(server.close_timeout() / 2))
            .unwrap();
        let mut byte = [0];
        let end = bob.read(&mut byte);
        assert!(
            end.ok() == Some(0),
            "after its close frame, the server closes the connection at once, without \
             waiting for the client to close first"
        );
        expect(&mut ann, &left("bob"), "ann");
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
    let (mut stream, _) = join(server.address, "ann");
    // An unmasked frame, then 1 MiB more that the server will not want.
    let mut bytes = vec![0x81, 0x05, b'H', b'e', b'l', b'l', b'o'];
    bytes.extend(client_frame(true, BINARY, &vec![0; 1 << 20]));
    let mut writer = stream.try_clone().unwrap();
    let sending = thread::spawn(move || std::io::Write::write_all(&mut writer, &bytes));
    let close = read_close(&mut stream);
    assert!(
        close.close_code() == Some(1002),
        "an unmasked frame fails the connection with 1002; got {close:?}"
    );
    expect_end_of_stream(&mut stream); // the end of the stream, not a reset
    assert!(
        sending.join().unwrap().is_ok(),
        "the server stopped reading what the client sent after its close frame"
    );
}
