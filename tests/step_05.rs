//! Stage 5 over real TCP: the JSON chat protocol. Names, join and leave
//! notices, messages stamped with their sender, and every refusal, which
//! comes as an error message on a connection that stays open.

use insta::assert_snapshot;
use std::net::{Shutdown, SocketAddr, TcpStream};
use step_05 as stage;
use ws_tests::*;

fn server() -> SocketAddr {
    start_server(stage::serve)
}

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
    expect_silence(&mut lurker, std::time::Duration::from_millis(200));
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
/// with the right code, and a leave notice for the others.
#[test]
fn a_protocol_error_ends_only_that_connection() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    read_text(&mut ann); // bob joined
    send_frame(
        &mut bob,
        true,
        TEXT,
        b"{\"type\":\"message\",\"text\":\"caf\xe9\"}",
    );
    expect_close(&mut bob, 1007);
    assert_eq!(read_text(&mut ann), r#"{"type":"leave","name":"bob"}"#);
    send_text(&mut ann, r#"{"type":"message","text":"still here"}"#);
    assert_eq!(
        read_text(&mut ann),
        r#"{"type":"message","from":"ann","text":"still here"}"#
    );
}

/// A joined client that stops reading is dropped once it falls too far
/// behind, and the others see it leave, however it went.
#[test]
fn a_client_too_slow_to_keep_up_is_dropped_with_a_leave_notice() {
    let address = server();
    let (mut ann, _) = join(address, "ann");
    let (_silent, _) = join(address, "silent");
    assert_eq!(read_text(&mut ann), r#"{"type":"join","name":"silent"}"#);
    // Big messages, until the server has given up on the silent client:
    // its allowance, plus what the sockets' buffers can hold.
    let text = "x".repeat(stage::MAX_CHAT_MESSAGE_LEN - 100);
    let message = format!(r#"{{"type":"message","text":"{text}"}}"#);
    let most = (stage::MAX_UNSENT_BYTES + 32 * 1024 * 1024) / text.len();
    for _ in 0..most {
        send_text(&mut ann, &message);
        let heard = read_text(&mut ann);
        if heard == r#"{"type":"leave","name":"silent"}"# {
            return;
        }
        assert!(
            heard.ends_with(&format!(r#""text":"{text}"}}"#)),
            "{heard:.80}"
        );
    }
    panic!("the silent client was never dropped");
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
