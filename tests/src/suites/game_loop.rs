//! The promise of the game loop, over real TCP: no client ever waits for
//! another, not for a quiet one, a slow one, one that never reads, or one
//! that vanishes halfway through a frame; and 200 clients each get every
//! message.
//!
//! Written once for both kinds of chat: stage 4's, where a client's text
//! goes to everyone as it is, and the JSON chat of stage 5 on, where a
//! client joins with a name first and every message comes with its
//! sender's name (see [`Chat`]'s methods below). Join and leave notices
//! come in between; these checks skip them (the chat's own checks look at
//! them).

use super::chat::{read_json, welcome_of};
use crate::*;
use std::net::{Shutdown, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

impl Chat {
    /// Connects and joins the chat as `name`: the handshake, and from
    /// stage 5 on, a join and its welcome.
    #[track_caller]
    pub fn join(self, address: SocketAddr, name: &str) -> Conn {
        let mut stream = ws_handshake(address);
        if self == Chat::Json {
            send_raw(&mut stream, &self.join_frames(name));
            self.welcomed(&mut stream, name);
        }
        stream
    }

    /// What a client sends, after its handshake, to join as `name`.
    pub fn join_frames(self, name: &str) -> Vec<u8> {
        match self {
            Chat::Json => {
                let join = format!(r#"{{"type":"join","name":"{name}"}}"#);
                client_frame(true, TEXT, join.as_bytes())
            }
            _ => Vec::new(),
        }
    }

    /// Reads the welcome that a join as `name` gets, from stage 5 on.
    #[track_caller]
    pub fn welcomed(self, stream: &mut Conn, name: &str) {
        if self == Chat::Json {
            let welcome = read_json(stream);
            assert!(
                welcome_of(&welcome) == Some(name.to_string()),
                "a join as {name:?} gets a welcome, \
                 {{\"type\":\"welcome\",\"name\":{name:?},\"users\":[...]}}; got {welcome}"
            );
        }
    }

    /// What a client sends to say `text`.
    pub fn message(self, text: &str) -> String {
        match self {
            Chat::Json => format!(r#"{{"type":"message","text":"{text}"}}"#),
            _ => text.to_string(),
        }
    }

    /// What everyone hears when `from` says `text`.
    pub fn said(self, from: &str, text: &str) -> String {
        match self {
            Chat::Json => format!(r#"{{"type":"message","from":"{from}","text":"{text}"}}"#),
            _ => text.to_string(),
        }
    }

    /// Reads the next chat message, skipping join and leave notices.
    #[track_caller]
    pub fn hear(self, stream: &mut Conn) -> String {
        if self != Chat::Json {
            return read_text(stream);
        }
        loop {
            let text = read_json(stream);
            let notice =
                text.starts_with(r#"{"type":"join","#) || text.starts_with(r#"{"type":"leave","#);
            if !notice {
                return text;
            }
        }
    }

    /// The longest text of one message that the chat takes, or 256 KiB.
    pub(crate) fn big_text_len(self, server: &Server) -> usize {
        (server.max_message_len() - 100).min(256 * 1024)
    }
}

/// Sends `text` as one text message.
fn send_text(stream: &mut Conn, text: &str) {
    send_frame(stream, true, TEXT, text.as_bytes());
}

/// Checks that what a client heard is what it should have.
#[track_caller]
fn expect_heard(heard: &str, expected: &str, who: &str) {
    assert!(
        heard == expected,
        "{who} should hear {:.100}\n  but heard {heard:.100}",
        expected
    );
}

// ANCHOR: quiet_client
/// A client that says nothing, one that connected and never joined, and
/// one that sent half a request: none of them makes the next client wait,
/// not even until the half request's deadline. In stage 3 the next client
/// would wait for as long as the others stayed.
pub fn a_quiet_client_does_not_make_the_next_one_wait(server: &Server) {
    about(
        "(the game loop) no client waits for another",
        "ch04-game-loop.md#the-loop",
    );
    let chat = server.chat();
    let address = server.address;
    let _quiet = chat.join(address, "quiet");
    let _lurker = ws_handshake(address);
    let _half_a_request = {
        let mut stream = connect(address);
        send_raw(&mut stream, b"GET / HTTP/1.1\r\nUpg");
        stream
    };
    let started = Instant::now();
    let mut next = chat.join(address, "next");
    send_text(&mut next, &chat.message("no waiting"));
    expect_heard(
        &chat.hear(&mut next),
        &chat.said("next", "no waiting"),
        "next",
    );
    // Not a measure of speed: a server that served the next client only
    // once the half request timed out would take this long.
    let waited = started.elapsed();
    assert!(
        waited < server.request_timeout() / 2,
        "the next client waited {waited:?}: it waited for the others"
    );
}
// ANCHOR_END: quiet_client

// ANCHOR: trickling
/// A client sends its request (its join) and a message one byte at a
/// time, while another chats: the other's messages go round at once (it
/// reads each before the slow client's next byte leaves, so a server that
/// waited for the slow client would wait forever), and the slow client's
/// message arrives whole, to both.
pub fn a_client_trickling_bytes_holds_up_nobody(server: &Server) {
    about(
        "(the game loop) no client waits for another",
        "ch04-game-loop/nonblocking-sockets.md#bytes-arrive-in-pieces",
    );
    let chat = server.chat();
    let address = server.address;
    let mut ann = chat.join(address, "ann");
    let mut slow = connect(address);
    slow.set_nodelay(true).unwrap();
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend(chat.join_frames("slow"));
    bytes.extend(client_frame(true, TEXT, chat.message("slowly").as_bytes()));
    let still_there = chat.said("ann", "still there?");
    // What ann hears besides her own messages.
    let mut news = Vec::new();
    for (i, byte) in bytes.iter().enumerate() {
        send_raw(&mut slow, &[*byte]);
        if i % 40 == 0 {
            let started = Instant::now();
            send_text(&mut ann, &chat.message("still there?"));
            loop {
                let heard = chat.hear(&mut ann);
                if heard == still_there {
                    break;
                }
                news.push(heard);
            }
            // A stall would take as long as the slow client: seconds.
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "ann's message took {:?} to come back: the server waited for the slow client",
                started.elapsed()
            );
        }
        thread::sleep(Duration::from_millis(1));
    }
    while news.is_empty() {
        news.push(chat.hear(&mut ann));
    }
    assert!(
        news == [chat.said("slow", "slowly")],
        "ann should hear the slow client's message, whole, once; she heard {news:?}"
    );
    check_101(&read_http_head(&mut slow));
    chat.welcomed(&mut slow, "slow");
    // Once it was in the chat, the slow client heard ann too.
    let mut heard = chat.hear(&mut slow);
    while heard == still_there {
        heard = chat.hear(&mut slow);
    }
    expect_heard(&heard, &chat.said("slow", "slowly"), "the slow client");
}
// ANCHOR_END: trickling

/// Clients vanish in every way, halfway through a request or a frame,
/// in the chat or not; the chat goes on for the ones who stay.
pub fn clients_vanishing_mid_frame_do_not_disturb_the_others(server: &Server) {
    about(
        "(the game loop) a client that vanishes",
        "ch04-game-loop/one-client.md#a-client-that-vanishes",
    );
    let chat = server.chat();
    let address = server.address;
    let mut stayer = chat.join(address, "stayer");
    let frame = client_frame(true, TEXT, chat.message("never finished").as_bytes());
    for cut in [1, 2, 6, 10] {
        let mut leaver = chat.join(address, &format!("leaver{cut}"));
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
        send_text(&mut stayer, &chat.message("still here"));
        expect_heard(
            &chat.hear(&mut stayer),
            &chat.said("stayer", "still here"),
            "the client who stayed",
        );
    }
}

/// A protocol error ends one client's connection, and only that one.
pub fn one_clients_protocol_error_ends_only_its_own_connection(server: &Server) {
    about(
        "RFC 6455, section 7.1.7 (failing the connection: that one)",
        "ch04-game-loop/writing-without-waiting.md#the-last-word",
    );
    let chat = server.chat();
    let address = server.address;
    let mut good = chat.join(address, "good");
    let mut bad = chat.join(address, "bad");
    send_raw(&mut bad, &client_frame_raw(FIN | RSV1 | TEXT, b"rsv1"));
    expect_close(&mut bad, 1002);
    send_text(&mut good, &chat.message("fine here"));
    expect_heard(
        &chat.hear(&mut good),
        &chat.said("good", "fine here"),
        "good",
    );
}

// ANCHOR: never_reads
/// A client that never reads: the others get every message promptly, and
/// once the server holds more than it may for the silent one, it hangs up
/// on it instead of hoarding memory.
pub fn a_client_that_never_reads_is_dropped_and_the_others_carry_on(server: &Server) {
    about(
        "(the game loop) a client that never reads",
        "ch04-game-loop/slow-clients-and-memory.md#a-client-that-never-reads",
    );
    let chat = server.chat();
    let address = server.address;
    let mut sender = chat.join(address, "sender");
    let mut reader = chat.join(address, "reader");
    let mut never_reads = chat.join(address, "never_reads");

    // Enough to fill the silent client's socket buffers and then the
    // server's allowance for it.
    let text = "x".repeat(chat.big_text_len(server));
    let said = chat.said("sender", &text);
    let total = server.max_unsent_bytes() + 16 * 1024 * 1024;
    for _ in 0..total / text.len() {
        let started = Instant::now();
        send_text(&mut sender, &chat.message(&text));
        for client in [&mut sender, &mut reader] {
            let heard = chat.hear(client);
            assert!(heard == said, "a message came back changed: {heard:.80}");
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a delivery took {:?}: the server waited for the client that never reads",
            started.elapsed()
        );
    }

    // The silent client was dropped: after what its buffers held, its
    // stream ends.
    let (ended, got) = read_until_dropped(&mut never_reads);
    assert!(
        ended,
        "the client that never reads was never disconnected: once it is more than {} bytes \
         behind, the server must drop it and close its connection (a client that is dropped \
         but never removed keeps its socket open)",
        server.max_unsent_bytes()
    );
    assert!(got < total, "it got everything after all");
}
// ANCHOR_END: never_reads

/// 200 clients join, each sends one message, and every one gets all 200,
/// in the same order as everyone else: the order the server chose.
pub fn two_hundred_clients_each_get_every_message(server: &Server) {
    about(
        "(the game loop) every client at once",
        "ch04-game-loop.md#the-loop",
    );
    let chat = server.chat();
    let address = server.address;
    let names: Vec<String> = (0..200).map(|i| format!("user{i}")).collect();
    let mut clients: Vec<Conn> = names.iter().map(|name| chat.join(address, name)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        send_text(client, &chat.message(&format!("message {i}")));
    }
    let mut expected: Vec<String> = (0..200)
        .map(|i| chat.said(&names[i], &format!("message {i}")))
        .collect();
    expected.sort();
    let mut first_order: Option<Vec<String>> = None;
    for (i, client) in clients.iter_mut().enumerate() {
        let received: Vec<String> = (0..200).map(|_| chat.hear(client)).collect();
        let mut sorted = received.clone();
        sorted.sort();
        assert!(
            sorted == expected,
            "client {i} did not get the 200 messages, one from each client"
        );
        match &first_order {
            None => first_order = Some(received),
            Some(order) => assert!(
                &received == order,
                "client {i} got the messages in another order than client 0"
            ),
        }
    }
}

/// How many bytes the system's buffers hold for a loopback connection
/// whose reader does not read: what a client can fall behind before the
/// server has to keep anything for it.
pub(crate) fn socket_buffers_hold() -> usize {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let _reader = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
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
pub fn a_client_that_reads_late_still_gets_everything(server: &Server) {
    about(
        "(the game loop) writes leave in pieces too",
        "ch04-game-loop/writing-without-waiting.md#the-output-queue",
    );
    let chat = server.chat();
    let address = server.address;
    let mut ann = chat.join(address, "ann");
    let mut late = chat.join(address, "late");
    let text = "x".repeat(chat.big_text_len(server));
    let big = chat.said("ann", &text);
    let count = (socket_buffers_hold() + server.max_unsent_bytes() / 2) / big.len();
    for _ in 0..count {
        send_text(&mut ann, &chat.message(&text));
        let heard = chat.hear(&mut ann);
        assert!(heard == big, "a message came back changed: {heard:.80}");
    }
    // Nobody sends anything more: only the late reader's reads can make
    // room for the rest of its messages.
    for i in 0..count {
        let heard = chat.hear(&mut late);
        assert!(
            heard == big,
            "the late reader should get message {i} of {count}: {heard:.80}"
        );
    }
    send_text(&mut late, &chat.message("caught up"));
    expect_heard(&chat.hear(&mut ann), &chat.said("late", "caught up"), "ann");
}

/// The deadline of the HTTP request wakes the loop on its own, on a server
/// with nothing else to do: a client that never finishes its request is cut
/// off, with no answer. A client in the chat may stay quiet for longer than
/// that: the deadline is the request's, not the WebSocket's.
pub fn an_unfinished_request_is_cut_off_but_a_quiet_websocket_is_not(server: &Server) {
    about(
        "(the game loop) deadlines",
        "ch04-game-loop/one-client.md#the-request",
    );
    let chat = server.chat();
    let address = server.address;
    let mut quiet = chat.join(address, "quiet");
    let mut half_a_request = connect(address);
    half_a_request
        .set_read_timeout(Some(server.request_timeout() + Duration::from_secs(2)))
        .unwrap();
    send_raw(&mut half_a_request, b"GET / HTTP/1.1\r\nHost: x\r\n");
    let answer = read_to_close(&mut half_a_request);
    assert!(
        answer.is_empty(),
        "a client that never finished its request gets no answer: it is hung up on; got {answer:?}"
    );
    thread::sleep(Duration::from_millis(500)); // well past the deadline
    send_text(&mut quiet, &chat.message("still here"));
    expect_heard(
        &chat.hear(&mut quiet),
        &chat.said("quiet", "still here"),
        "quiet",
    );
}
