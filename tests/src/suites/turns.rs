//! What stage 7 changes that a client can see: a turn of its loop touches
//! only the clients that have something, so clients that come and go in the
//! same turns must never get one another's messages, and a client that
//! sends without a pause must not keep the loop from the others.

use super::chat::{join, joined, left, message, read_json, said, send_text};
use crate::*;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

// ANCHOR: coming_and_going
/// Round after round, the clients of the last round leave (half with a
/// close frame, half vanishing) while as many new ones arrive, half of
/// them to join and half only to connect, so that the server lets clients
/// go and takes new ones into their slots in the same turns. Each client
/// must get what is meant for it and nothing else: a new client never
/// hears anything meant for the one that had its slot before, a client
/// that never joined hears nothing, and every message arrives with the
/// name of the client that sent it.
pub fn clients_coming_and_going_get_only_their_own_messages(server: &Server) {
    about(
        "RFC 6455, section 5.6 (data frames)",
        "ch07-epoll/tokens.md#a-turn-in-the-right-order",
    );
    let address = server.address;
    let (mut host, _) = join(address, "host");
    let mut last_round: Vec<Conn> = Vec::new();
    for round in 0..8 {
        let leaving = last_round.len();
        for (i, mut stream) in last_round.drain(..).enumerate() {
            if i % 2 == 0 {
                send_frame(&mut stream, true, CLOSE, &1001u16.to_be_bytes());
            }
        }
        // Each new client sends its request and its join in one write.
        let names: Vec<String> = (0..10).map(|i| format!("r{round}c{i}")).collect();
        let mut joiners = Vec::new();
        for name in &names {
            let mut stream = connect(address);
            let mut bytes = upgrade_request(address).into_bytes();
            let join_request = format!(r#"{{"type":"join","name":"{name}"}}"#);
            bytes.extend(client_frame(true, TEXT, join_request.as_bytes()));
            send_raw(&mut stream, &bytes);
            joiners.push(stream);
        }
        let lurkers: Vec<Conn> = (0..10).map(|_| ws_handshake(address)).collect();
        // The host hears everyone leave and everyone join, in some order.
        let mut expected: Vec<String> = (0..leaving)
            .map(|i| left(&format!("r{}c{i}", round - 1)))
            .collect();
        expected.extend(names.iter().map(|name| joined(name)));
        let mut heard: Vec<String> = (0..expected.len()).map(|_| read_json(&mut host)).collect();
        heard.sort();
        expected.sort();
        assert_eq!(heard, expected, "round {round}: who left and who joined");
        // Everyone has joined: each new client says who it is.
        for (name, stream) in names.iter().zip(&mut joiners) {
            send_text(stream, &message(&format!("I am {name}")));
        }
        let mut heard: Vec<String> = names.iter().map(|_| read_json(&mut host)).collect();
        let mut expected: Vec<String> = names
            .iter()
            .map(|name| said(name, &format!("I am {name}")))
            .collect();
        heard.sort();
        expected.sort();
        assert_eq!(
            heard, expected,
            "round {round}: a message with the wrong sender"
        );
        for (name, stream) in names.iter().zip(&mut joiners) {
            check_101(&read_http_head(stream));
            // First its own welcome, then only this round's news.
            let welcome = read_json(stream);
            let own = format!(r#"{{"type":"welcome","name":"{name}","users":["#);
            assert!(welcome.starts_with(&own), "{name} got {welcome}");
            let mut messages = 0;
            while messages < names.len() {
                let text = read_json(stream);
                if text.contains(r#""type":"message""#) {
                    assert!(text.contains(&format!("r{round}c")), "{name} got {text}");
                    messages += 1;
                } else {
                    let this_round = text.contains(&format!("\"r{round}c"));
                    let last_round = round > 0 && text.contains(&format!("\"r{}c", round - 1));
                    assert!(this_round || last_round, "{name} got {text}");
                }
            }
        }
        for mut lurker in lurkers {
            expect_silence(&mut lurker, Duration::from_millis(20));
        }
        last_round = joiners;
    }
    send_text(&mut host, &message("still here"));
    loop {
        let text = read_json(&mut host);
        if text == said("host", "still here") {
            break;
        }
        assert!(text.contains(r#""type":"leave""#), "{text}");
    }
}
// ANCHOR_END: coming_and_going

// ANCHOR: flooding
/// One client sends pongs (which need no answer) as fast as it can, for
/// as long as the check lasts. Meanwhile two others chat, and each of their
/// messages goes round at once: the loop reads at most so much from one
/// client in a turn, then serves the others. (A loop that read every
/// socket until `WouldBlock` would read the flood for as long as it lasts.)
pub fn a_flooding_client_holds_up_nobody(server: &Server) {
    about(
        "RFC 6455, section 5.5.3 (pong)",
        "ch07-epoll/level-or-edge.md#a-test-that-starvation-would-fail",
    );
    let address = server.address;
    let (mut alice, _) = join(address, "alice");
    let (mut bob, _) = join(address, "bob");
    assert_eq!(read_json(&mut alice), joined("bob"));
    let stop = Arc::new(AtomicBool::new(false));
    let flooder = {
        let mut stream = ws_handshake(address);
        let stop = stop.clone();
        let pongs: Vec<u8> = (0..500)
            .flat_map(|_| client_frame(true, PONG, &[b'x'; 125]))
            .collect();
        thread::spawn(move || {
            let mut sent = 0usize;
            while !stop.load(Ordering::Relaxed) && stream.write_all(&pongs).is_ok() {
                sent += pongs.len();
            }
            sent
        })
    };
    thread::sleep(Duration::from_millis(100));
    let mut slowest = Duration::ZERO;
    for i in 0..50 {
        let sent = Instant::now();
        send_text(&mut alice, &message(&format!("hello {i}")));
        assert_eq!(read_json(&mut bob), said("alice", &format!("hello {i}")));
        assert_eq!(read_json(&mut alice), said("alice", &format!("hello {i}")));
        slowest = slowest.max(sent.elapsed());
    }
    stop.store(true, Ordering::Relaxed);
    let flooded = flooder.join().unwrap();
    assert!(flooded > 1_000_000, "the flood was only {flooded} bytes");
    assert!(
        slowest < Duration::from_secs(1),
        "beside a client that floods, a message took {slowest:?} to go round"
    );
}
// ANCHOR_END: flooding
