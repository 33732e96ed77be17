//! Stage 4 over real TCP: the group chat, and the promise of the game loop,
//! that no client ever waits for another: not for a quiet one, a slow one,
//! one that never reads, or one that vanishes halfway through a frame.
//!
//! Every rule of stage 3 still holds, for each client on its own: with one
//! client, the broadcast is an echo, so `websocket.rs` and the fast
//! conformance tests run here too.

use insta::assert_snapshot;
use std::io::Read;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};
use step_04 as stage;
use ws_tests::*;

fn server() -> SocketAddr {
    start_server(stage::serve)
}

#[path = "websocket.rs"]
mod websocket;

#[path = "http.rs"]
mod http;

#[path = "conformance.rs"]
mod conformance;

/// Reads one text message and returns it as a string.
fn read_text(stream: &mut TcpStream) -> String {
    let frame = read_frame(stream);
    assert_eq!(frame.opcode, TEXT, "{frame:?}");
    String::from_utf8(frame.payload).unwrap()
}

// ANCHOR: three_clients_chat
/// Three people chat; one leaves; the others go on. Each line of the
/// transcript is one client sending (`->`) or receiving (`<-`).
#[test]
fn three_clients_chat() {
    let address = server();
    let mut clients: Vec<TcpStream> = (0..3).map(|_| ws_handshake(address)).collect();
    let mut transcript = Vec::new();
    say(&mut clients, &mut transcript, 0, "hi all");
    say(&mut clients, &mut transcript, 1, "hi ann");
    say(&mut clients, &mut transcript, 2, "bye!");
    let mut cat = clients.pop().unwrap();
    close_with(&mut cat, 1000);
    transcript.push("cat closes, and is gone".to_string());
    say(&mut clients, &mut transcript, 0, "just us now");
    assert_snapshot!(transcript.join("\n"));
}

/// Client `from` sends `text`; every client reads what arrives next.
fn say(clients: &mut [TcpStream], transcript: &mut Vec<String>, from: usize, text: &str) {
    let names = ["ann", "bob", "cat"];
    send_frame(&mut clients[from], true, TEXT, text.as_bytes());
    transcript.push(format!("{} -> {text:?}", names[from]));
    for (to, client) in clients.iter_mut().enumerate() {
        transcript.push(format!("  {} <- {:?}", names[to], read_text(client)));
    }
}
// ANCHOR_END: three_clients_chat

// ANCHOR: quiet_client
/// The opposite of stage 3's `a_quiet_client_makes_the_next_one_wait`.
#[test]
fn a_quiet_client_does_not_make_the_next_one_wait() {
    let address = server();
    let _quiet = ws_handshake(address);
    let _half_a_request = {
        let mut stream = connect(address);
        send_raw(&mut stream, b"GET / HTTP/1.1\r\nUpg");
        stream
    };
    let started = Instant::now();
    let mut next = ws_handshake(address);
    send_frame(&mut next, true, TEXT, b"no waiting");
    assert_eq!(read_text(&mut next), "no waiting");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}
// ANCHOR_END: quiet_client

// ANCHOR: trickling
/// A client sends a handshake and then a frame one byte at a time, while
/// another chats: the other's messages go round at once, and the slow
/// client's message arrives whole.
#[test]
fn a_client_trickling_bytes_holds_up_nobody() {
    let address = server();
    let mut chatty = ws_handshake(address);
    let mut slow = connect(address);
    let mut bytes = upgrade_request(address).into_bytes();
    bytes.extend_from_slice(&client_frame(true, TEXT, b"slowly but surely"));
    for (i, byte) in bytes.iter().enumerate() {
        send_raw(&mut slow, &[*byte]);
        if i % 40 == 0 {
            let started = Instant::now();
            send_frame(&mut chatty, true, TEXT, b"still there?");
            assert_eq!(read_text(&mut chatty), "still there?");
            // A stall would take as long as the slow client: seconds.
            assert!(started.elapsed() < Duration::from_secs(2));
        }
        thread::sleep(Duration::from_millis(1));
    }
    check_101(&read_http_head(&mut slow));
    // Once its handshake was done, the slow client was in the chat too.
    let mut heard = read_text(&mut slow);
    while heard == "still there?" {
        heard = read_text(&mut slow);
    }
    assert_eq!(heard, "slowly but surely");
    assert_eq!(read_text(&mut chatty), "slowly but surely");
}
// ANCHOR_END: trickling

// ANCHOR: never_reads
/// A client that never reads: the others get every message promptly, and
/// once the server holds more than it may for the silent one, it hangs up
/// on it instead of hoarding memory.
#[test]
fn a_client_that_never_reads_is_dropped_and_the_others_carry_on() {
    let address = server();
    let mut sender = ws_handshake(address);
    let mut reader = ws_handshake(address);
    let mut never_reads = ws_handshake(address);

    // Enough to fill the silent client's socket buffers and then the
    // server's allowance for it.
    let message = vec![b'x'; 256 * 1024];
    let total = stage::MAX_UNSENT_BYTES + 16 * 1024 * 1024;
    for _ in 0..total / message.len() {
        let started = Instant::now();
        send_frame(&mut sender, true, BINARY, &message);
        for client in [&mut sender, &mut reader] {
            assert_eq!(read_frame(client).payload.len(), message.len());
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a delivery took {:?}",
            started.elapsed()
        );
    }

    // The silent client was dropped: after what its buffers held, its
    // stream ends.
    never_reads.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut sink = Vec::new();
    let ended = match never_reads.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(error) => error.kind() == std::io::ErrorKind::ConnectionReset,
    };
    assert!(ended, "the silent client was not disconnected");
    assert!(sink.len() < total, "it got everything after all");
}
// ANCHOR_END: never_reads

/// Clients vanish in every way, halfway through a request or a frame; the
/// chat goes on for the ones who stay.
#[test]
fn clients_vanishing_mid_frame_do_not_disturb_the_others() {
    let address = server();
    let mut stayer = ws_handshake(address);
    let frame = client_frame(true, TEXT, b"never finished");
    for cut in [1, 2, 6, 10] {
        let mut leaver = ws_handshake(address);
        send_raw(&mut leaver, &frame[..cut]);
        leaver.shutdown(Shutdown::Both).unwrap();
        let mut half_request = connect(address);
        send_raw(
            &mut half_request,
            &upgrade_request(address).as_bytes()[..cut * 10],
        );
        drop(half_request);
        send_frame(&mut stayer, true, TEXT, b"still here");
        assert_eq!(read_text(&mut stayer), "still here");
    }
}

/// A protocol error ends one client's connection, and only that one.
#[test]
fn one_clients_protocol_error_ends_only_its_own_connection() {
    let address = server();
    let mut good = ws_handshake(address);
    let mut bad = ws_handshake(address);
    send_raw(&mut bad, &client_frame_raw(0x80 | 0x40 | 0x1, b"rsv1"));
    expect_close(&mut bad, 1002);
    send_frame(&mut good, true, TEXT, b"fine here");
    assert_eq!(read_text(&mut good), "fine here");
}

/// 200 clients at once, each sends one message, every one gets all 200.
#[test]
fn two_hundred_clients_each_get_every_message() {
    let address = server();
    let mut clients: Vec<TcpStream> = (0..200).map(|_| ws_handshake(address)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        send_frame(client, true, TEXT, format!("message {i}").as_bytes());
    }
    for client in &mut clients {
        let mut received: Vec<String> = (0..200).map(|_| read_text(client)).collect();
        received.sort();
        let mut expected: Vec<String> = (0..200).map(|i| format!("message {i}")).collect();
        expected.sort();
        assert_eq!(received, expected);
    }
}

#[test]
fn get_slash_serves_the_chat_page() {
    let response = exchange(server(), b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 4: group chat</title>"));
}
