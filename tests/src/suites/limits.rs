//! Stage 8's limits, over real TCP. On connections: past the most it
//! holds from one address, or in all, a newcomer is answered `503 Service
//! Unavailable` at once, before its request, with `Retry-After` and a body
//! that says why, and is hung up on cleanly; the clients already in never
//! notice, a newcomer from another address still gets in, and a slot that
//! a client leaves is free again. On messages: each client has a bucket of
//! as many messages as it may send a second, refilled at that rate; a
//! burst of a whole bucket goes round, what comes past it is refused with
//! an error message that nobody else sees, and a client that goes on until
//! it owes a whole bucket more is closed with 1008.
//!
//! Why: one machine (or one script) must not take every file descriptor,
//! nor keep the one thread of the loop busy broadcasting for it.
//!
//! A second address of this machine is 127.0.0.2 (Linux answers on all of
//! 127.0.0.0/8); where it is not, the checks that need it are skipped.

use super::chat::{join, joined, message, read_json, said, send_text};
use crate::*;
use std::net::{Ipv4Addr, SocketAddr};
use std::thread;
use std::time::{Duration, Instant};

/// Gives the server a moment to let go of the connections of the checks
/// before (the grader runs them all against one server): the counts below
/// are exact.
fn settle() {
    thread::sleep(Duration::from_millis(300));
}

/// `count` WebSockets from `from` (127.0.0.1 if `None`).
#[track_caller]
fn open_websockets(address: SocketAddr, from: Option<Ipv4Addr>, count: usize) -> Vec<Conn> {
    (0..count)
        .map(|_| {
            let stream = match from {
                None => connect(address),
                Some(ip) => Conn::open_from(ip, address)
                    .unwrap_or_else(|error| panic!("could not connect from {ip}: {error}")),
            };
            ws_handshake_over(stream, address)
        })
        .collect()
}

/// A connection from `ip`, or a skip of the check if this machine has no
/// such address.
#[track_caller]
fn open_from_or_skip(ip: Ipv4Addr, address: SocketAddr) -> Conn {
    match Conn::open_from(ip, address) {
        Ok(stream) => stream,
        Err(error) => check::skip(format!(
            "it needs a second address of this machine, {ip}, to connect from: {error}"
        )),
    }
}

/// Checks that `stream`, which has sent nothing, is turned away at once:
/// `503`, `Retry-After`, a body that says why; then the end of the stream
/// (a FIN, not a reset). Returns the body.
#[track_caller]
fn expect_turned_away(mut stream: Conn, why: &str) -> String {
    let answer = read_response(&mut stream);
    assert!(
        !answer.is_empty(),
        "a newcomer over the limit ({why}) gets 503 at once, before it has sent anything; \
         this one got nothing, and the connection ended: the server let it in, and hung up on \
         it when it sent no request in time?"
    );
    let response = Response::parse(&answer);
    response.expect_status(503, why);
    assert!(
        response.header("Retry-After").is_some(),
        "a 503 says when to come back: `Retry-After: SECONDS`"
    );
    assert!(
        !response.body.trim().is_empty(),
        "the body of the 503 says why the server turns the client away; it is empty"
    );
    expect_end_of_stream(&mut stream);
    response.body
}

/// Over the most connections one address may hold, the next from it gets
/// 503 at once, before it has sent anything.
pub fn over_the_per_address_limit_a_newcomer_gets_503(server: &Server) {
    about(
        "RFC 9110, section 15.6.4 (503)",
        "ch08-production/limits.md#at-the-door",
    );
    let address = server.address;
    let limit = server.max_connections_per_address();
    settle();
    let _held = open_websockets(address, None, limit);
    let body = expect_turned_away(
        connect(address),
        &format!("{limit} connections from this address are all it may hold"),
    );
    keep(body);
}

/// A newcomer from another address still gets in while one address is at
/// its limit: the limit is per address.
pub fn a_client_from_another_address_still_gets_in(server: &Server) {
    about(
        "RFC 9110, section 15.6.4 (503)",
        "ch08-production/limits.md#at-the-door",
    );
    let address = server.address;
    let limit = server.max_connections_per_address();
    let other = Ipv4Addr::new(127, 0, 0, 2);
    let probe = open_from_or_skip(other, address);
    drop(probe);
    settle();
    let _held = open_websockets(address, None, limit);
    expect_turned_away(connect(address), "this address is at its limit");
    let stream = open_from_or_skip(other, address);
    let mut stream = ws_handshake_over(stream, address);
    close_with(&mut stream, 1000);
}

/// While the server turns newcomers away, the clients it holds chat on as
/// if nothing happened.
pub fn clients_under_the_limit_never_notice(server: &Server) {
    about(
        "RFC 9110, section 15.6.4 (503)",
        "ch08-production/limits.md#at-the-door",
    );
    let address = server.address;
    let limit = server.max_connections_per_address();
    settle();
    let (mut ann, _) = join(address, "ann");
    let (mut bob, _) = join(address, "bob");
    assert_eq!(read_json(&mut ann), joined("bob"));
    let _held = open_websockets(address, None, limit - 2);
    for i in 0..3 {
        expect_turned_away(connect(address), "the address is at its limit");
        let text = format!("still chatting {i}");
        send_text(&mut ann, &message(&text));
        for (who, stream) in [("ann", &mut ann), ("bob", &mut bob)] {
            let heard = read_json(stream);
            assert!(
                heard == said("ann", &text),
                "{who}, in before the limit, hears the chat as before: {}; got {heard}",
                said("ann", &text)
            );
        }
    }
}

/// When a client leaves, its slot is free: the next newcomer gets in.
pub fn a_slot_freed_by_a_leaving_client_can_be_taken_again(server: &Server) {
    about(
        "RFC 9110, section 15.6.4 (503)",
        "ch08-production/limits.md#at-the-door",
    );
    let address = server.address;
    let limit = server.max_connections_per_address();
    settle();
    let mut held = open_websockets(address, None, limit);
    expect_turned_away(connect(address), "the address is at its limit");
    let mut leaving = held.pop().unwrap();
    close_with(&mut leaving, 1000);
    drop(leaving);
    // The server notices the hang-up in a moment: try a few times.
    let mut tries = 0;
    let mut newcomer = loop {
        tries += 1;
        let mut stream = connect(address);
        send_raw(&mut stream, upgrade_request(address).as_bytes());
        let head = read_http_head(&mut stream);
        if status_line(&head).starts_with("HTTP/1.1 101") || tries == 20 {
            check_101(&head);
            break stream;
        }
        thread::sleep(Duration::from_millis(50));
    };
    close_with(&mut newcomer, 1000);
}

/// Over the most connections the server holds in all, a newcomer gets 503,
/// even from an address that holds none: one address at its limit, a
/// second with the rest, and a third turned away.
pub fn over_the_total_limit_a_newcomer_gets_503(server: &Server) {
    about(
        "RFC 9110, section 15.6.4 (503)",
        "ch08-production/limits.md#at-the-door",
    );
    let address = server.address;
    let total = server.max_connections();
    let per_address = server.max_connections_per_address().min(total);
    let second = Ipv4Addr::new(127, 0, 0, 2);
    let third = Ipv4Addr::new(127, 0, 0, 3);
    drop(open_from_or_skip(second, address));
    drop(open_from_or_skip(third, address));
    settle();
    let _first = open_websockets(address, None, per_address);
    let rest = total - per_address;
    assert!(rest <= per_address, "two addresses reach the total limit");
    let _second = open_websockets(address, Some(second), rest);
    let body = expect_turned_away(
        open_from_or_skip(third, address),
        &format!("{total} connections are all the server holds"),
    );
    keep(body);
}

// ---------------------------------------------------------------------------
// Messages
// ---------------------------------------------------------------------------

/// Whether a chat message (canonical JSON) is an error message.
fn is_error(text: &str) -> bool {
    text.starts_with(r#"{"type":"error","#)
}

/// `count` messages, `m0` to `m{count-1}` from `first`, in one write.
fn burst(first: usize, count: usize) -> Vec<u8> {
    (first..first + count)
        .flat_map(|i| client_frame(true, TEXT, message(&format!("m{i}")).as_bytes()))
        .collect()
}

/// Two clients in the chat, ann and bob, with full buckets.
#[track_caller]
fn ann_and_bob(server: &Server) -> (Conn, Conn) {
    let (mut ann, _) = join(server.address, "ann");
    let (bob, _) = join(server.address, "bob");
    assert_eq!(read_json(&mut ann), joined("bob"));
    // Their joins took a token each: a moment refills it.
    thread::sleep(Duration::from_millis(100));
    (ann, bob)
}

/// A burst of a whole bucket (as many messages as the rate allows in a
/// second), all at once after a quiet spell, all goes round.
pub fn a_burst_of_a_whole_bucket_goes_round(server: &Server) {
    about(
        "(a token bucket)",
        "ch08-production/limits.md#a-token-bucket-for-messages",
    );
    let rate = server.max_messages_per_second();
    let (mut ann, mut bob) = ann_and_bob(server);
    send_raw(&mut ann, &burst(0, rate));
    for i in 0..rate {
        for (who, stream) in [("ann", &mut ann), ("bob", &mut bob)] {
            let heard = read_json(stream);
            assert!(
                heard == said("ann", &format!("m{i}")),
                "a burst of {rate} messages, a whole bucket, all goes round: {who} should \
                 hear message {i}, {}; got {heard}",
                said("ann", &format!("m{i}"))
            );
        }
    }
}

/// Past a whole bucket, each message is refused with an error message to
/// its sender, and goes to nobody else; the sender stays, and once its
/// bucket has refilled, it chats again.
pub fn past_the_bucket_messages_are_refused_and_nobody_else_gets_them(server: &Server) {
    about(
        "(a token bucket)",
        "ch08-production/limits.md#a-token-bucket-for-messages",
    );
    let rate = server.max_messages_per_second();
    let (mut ann, mut bob) = ann_and_bob(server);
    let sent = rate + rate / 2;
    send_raw(&mut ann, &burst(0, sent));
    let mut passed = 0;
    let mut refused = 0;
    let mut reason = String::new();
    for _ in 0..sent {
        let heard = read_json(&mut ann);
        if is_error(&heard) {
            refused += 1;
            reason = heard;
        } else {
            assert!(
                heard == said("ann", &format!("m{passed}")),
                "expected {} (or an error message), got {heard}",
                said("ann", &format!("m{passed}"))
            );
            passed += 1;
        }
    }
    // The bucket refills a little while the server reads the burst.
    assert!(
        (rate..=rate + rate / 10).contains(&passed),
        "of a burst of {sent} messages with a bucket of {rate}, {passed} went round"
    );
    assert!(refused > 0, "the messages past the bucket are refused");
    for i in 0..passed {
        let heard = read_json(&mut bob);
        assert!(
            heard == said("ann", &format!("m{i}")),
            "bob hears the {passed} messages that went round, and nothing else: \
             expected {}, got {heard}",
            said("ann", &format!("m{i}"))
        );
    }
    // Nothing else for bob: not the refused messages, not their errors.
    expect_silence_on_all(&mut [&mut ann, &mut bob], Duration::from_millis(1000));
    send_text(&mut ann, &message("refilled"));
    for stream in [&mut ann, &mut bob] {
        let heard = read_json(stream);
        assert!(
            heard == said("ann", "refilled"),
            "a second later, the bucket has refilled: the message goes round; got {heard}"
        );
    }
    keep(format!(
        "{sent} messages at once, a bucket of {rate}: each past the bucket gets\n{reason}"
    ));
}

/// A client that goes on sending far over the rate, until it owes a whole
/// bucket more, is closed with 1008 (policy violation); the others hear
/// it leave.
pub fn a_client_that_goes_on_flooding_gets_1008(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1008, policy violation)",
        "ch08-production/limits.md#a-token-bucket-for-messages",
    );
    let rate = server.max_messages_per_second();
    let (mut ann, mut bob) = ann_and_bob(server);
    let sent = 3 * rate;
    send_raw(&mut ann, &burst(0, sent));
    let mut frames = 0;
    let close = loop {
        let frame = read_frame(&mut ann);
        if frame.opcode == CLOSE {
            break frame;
        }
        frames += 1;
        assert!(
            frames <= sent,
            "{frames} answers to {sent} messages, and no close frame"
        );
    };
    assert!(
        close.close_code() == Some(1008),
        "a client that floods on is closed with 1008; got {close:?}"
    );
    assert!(
        frames >= 2 * rate - rate / 10,
        "the close came after {frames} answers: a client is closed once it owes a whole \
         bucket, after a bucket of messages and a bucket refused"
    );
    send_frame(&mut ann, true, CLOSE, &1008u16.to_be_bytes());
    // Bob hears at most a bucket and a bit of it, then that it left.
    let mut heard_from_ann = 0;
    loop {
        let heard = read_json(&mut bob);
        if heard == super::chat::left("ann") {
            break;
        }
        assert!(
            heard.starts_with(r#"{"type":"message","from":"ann""#),
            "bob hears ann's messages that went round, then that she left; got {heard}"
        );
        heard_from_ann += 1;
    }
    assert!(
        heard_from_ann <= rate + rate / 10,
        "bob got {heard_from_ann} of the flood: the refused ones too"
    );
}

/// A client that sends below the rate, for longer than a bucket lasts, is
/// never refused: the bucket refills as it goes.
pub fn a_client_within_the_rate_is_never_refused(server: &Server) {
    about(
        "(a token bucket)",
        "ch08-production/limits.md#a-token-bucket-for-messages",
    );
    let rate = server.max_messages_per_second();
    let (mut ann, mut bob) = ann_and_bob(server);
    // Four fifths of the rate, ten batches a second, for two seconds: more
    // than a bucket in all, never more than the bucket has.
    let batch = (rate * 4 / 5 / 10).max(1);
    let started = Instant::now();
    let mut sent = 0;
    for round in 0..20u32 {
        let due = started + Duration::from_millis(100) * round;
        thread::sleep(due.saturating_duration_since(Instant::now()));
        send_raw(&mut ann, &burst(sent, batch));
        for i in sent..sent + batch {
            for (who, stream) in [("ann", &mut ann), ("bob", &mut bob)] {
                let heard = read_json(stream);
                assert!(
                    heard == said("ann", &format!("m{i}")),
                    "{batch} messages every 100 ms is within {rate} a second: {who} should \
                     hear message {i}, {}; got {heard}",
                    said("ann", &format!("m{i}"))
                );
            }
        }
        sent += batch;
    }
    assert!(sent > rate, "more than a bucket in all: {sent}");
}

// ANCHOR: turning_away
/// Not a check of the list (what a server does past its descriptors is its
/// own business), but of the book's program `package`, allowed 128 open
/// files, one connection per address, and a long close timeout: a flood of
/// connections from one address that never read their 503 must not take
/// the descriptors that others need. Only so many are turned away at once;
/// past that, the flood is dropped unanswered, and a client from another
/// address gets in at once, not once the close timeout has freed them.
pub fn a_flood_over_the_limit_leaves_room_for_others(package: &str) {
    let mut command = std::process::Command::new("bash");
    command
        .args(["-c", r#"ulimit -n 128 && exec "$0" 127.0.0.1:0 "$@""#])
        .arg(program::binary(package))
        .args([
            "--max-connections-per-address",
            "1",
            "--close-timeout",
            "30",
        ]);
    let program = Program::spawn(command);
    let address = program.address;
    let Ok(other) = Conn::open_from(Ipv4Addr::new(127, 0, 0, 2), address) else {
        return; // no second address here: nothing to check it with
    };
    drop(other);
    let _in = ws_handshake(address);
    // More than the program has descriptors, none of them ever read.
    let flood: Vec<Conn> = (0..200).map(|_| connect(address)).collect();
    thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let stream = Conn::open_from(Ipv4Addr::new(127, 0, 0, 2), address).unwrap();
    let _other = ws_handshake_over(stream, address);
    let waited = started.elapsed();
    assert!(
        waited < Duration::from_secs(5),
        "a client from another address waited {waited:?} to get in: the flood turned away \
         from the first took the descriptors"
    );
    drop(flood);
}
// ANCHOR_END: turning_away
