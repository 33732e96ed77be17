//! Stage 8's graceful shutdown, on a fresh instance of the program each
//! (see [`Server::launch`]), stopped with a real signal: on SIGTERM (what
//! `kill`, systemd and Docker send) or SIGINT (Ctrl-C), every WebSocket
//! gets close 1001 ("going away") after every chat message that was sent
//! before the signal, the server accepts no one any more, waits up to the
//! close timeout for the clients' close frames, and exits with 0; a second
//! signal ends it at once.
//!
//! Why: without it, a restart (every deployment) drops every client as a
//! crash would, with 1006 in the browser and the last messages lost.
//!
//! These checks need to start the server themselves: the grader does,
//! from its command; against a server already running (`--address`), they
//! are skipped.

use super::chat::{join, message, read_json, said, send_text};
use crate::check::{Instance, Signal};
use crate::*;
use std::collections::BTreeSet;
use std::io::Read;
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// How much longer than it should the program may take to exit, on a busy
/// machine (a program may also flush its log first).
const MARGIN: Duration = Duration::from_millis(1500);

/// Waits for the program to exit, within `wait`; fails if it does not, or
/// exits with another code than 0.
#[track_caller]
fn expect_exit_0(program: &mut dyn Instance, wait: Duration, what: &str) {
    match program.wait(wait) {
        Some(0) => {}
        Some(-1) => panic!("the server died of a signal ({what}): it must catch it and exit 0"),
        Some(code) => panic!("the server exited with {code} ({what}); it must exit with 0"),
        None => panic!(
            "the server was still running {} after {what}",
            trace::seconds(wait)
        ),
    }
}

/// Reads until the close frame, which must be 1001; returns the chat
/// messages that came before it (join and leave notices left out).
#[track_caller]
fn messages_then_1001(stream: &mut Conn, who: &str, signal: Signal) -> BTreeSet<String> {
    let mut heard = BTreeSet::new();
    loop {
        let frame = read_frame(stream);
        if frame.opcode == CLOSE {
            assert!(
                frame.close_code() == Some(1001),
                "on {}, {who} gets a close frame with 1001 (going away); got {frame:?}",
                signal.name()
            );
            return heard;
        }
        assert!(
            frame.opcode == TEXT,
            "{who} expected chat messages, then a close frame with 1001; got {frame:?}"
        );
        let text =
            json::canonical_only(&frame.text(), &["type", "from", "text"]).unwrap_or(frame.text());
        if text.starts_with(r#"{"type":"message""#) {
            heard.insert(text);
        }
    }
}

/// 100 clients join; each says hello and hears its hello come back (the
/// server has it), and ten say a last word without waiting; then the
/// signal. Every client hears every hello and every last word, then gets
/// close 1001; answers it; and the program exits with 0 within the close
/// timeout.
fn every_client_gets_1001_and_nothing_is_lost(server: &Server, signal: Signal) {
    let close_timeout = server.close_timeout();
    let mut program = server.launch();
    let address = program.address();
    let names: Vec<String> = (0..100).map(|i| format!("user{i}")).collect();
    let mut clients: Vec<Conn> = names.iter().map(|name| join(address, name).0).collect();
    let mut expected = BTreeSet::new();
    for (i, client) in clients.iter_mut().enumerate() {
        send_text(client, &message(&format!("hello {i}")));
        expected.insert(said(&names[i], &format!("hello {i}")));
    }
    let mut heard: Vec<BTreeSet<String>> = vec![BTreeSet::new(); clients.len()];
    for (i, client) in clients.iter_mut().enumerate() {
        let own = said(&names[i], &format!("hello {i}"));
        while !heard[i].contains(&own) {
            let text = read_json(client);
            if text.starts_with(r#"{"type":"message""#) {
                heard[i].insert(text);
            }
        }
    }
    for (i, client) in clients.iter_mut().enumerate().take(10) {
        send_text(client, &message(&format!("last word {i}")));
        expected.insert(said(&names[i], &format!("last word {i}")));
    }
    program.signal(signal);
    let signalled = Instant::now();
    for (i, client) in clients.iter_mut().enumerate() {
        let who = &names[i];
        heard[i].extend(messages_then_1001(client, who, signal));
        let lost: Vec<&String> = expected.difference(&heard[i]).collect();
        assert!(
            lost.is_empty(),
            "{who} never got {} of the messages sent before the {} (a server reads what \
             every client sent, and delivers it, before its close frames): {lost:.3?}",
            lost.len(),
            signal.name()
        );
        send_frame(client, true, CLOSE, &1001u16.to_be_bytes());
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let mut rest = Vec::new();
        let _ = client.read_to_end(&mut rest);
        assert!(
            rest.is_empty(),
            "after its close frame, {} got {} bytes more",
            names[i],
            rest.len()
        );
        // The server has hung up: so do we.
        let _ = client.shutdown(Shutdown::Write);
    }
    let wait = close_timeout.saturating_sub(signalled.elapsed()) + MARGIN;
    expect_exit_0(
        &mut *program,
        wait,
        &format!("{} and every client's close", signal.name()),
    );
}

/// SIGTERM, with 100 clients in the chat.
pub fn on_sigterm_every_client_gets_1001_and_nothing_sent_is_lost(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1001, going away)",
        "ch08-production/shutdown.md#the-turn-that-stops",
    );
    every_client_gets_1001_and_nothing_is_lost(server, Signal::Term);
}

/// SIGINT (Ctrl-C), the same.
pub fn on_sigint_every_client_gets_1001_and_nothing_sent_is_lost(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1001, going away)",
        "ch08-production/shutdown.md#the-turn-that-stops",
    );
    every_client_gets_1001_and_nothing_is_lost(server, Signal::Int);
}

/// A client that has fallen behind (more than its socket's buffers hold,
/// so that the server keeps the rest for it) still gets every message that
/// went round before the signal, and only then its close 1001: a close
/// frame goes after what is queued, and the server waits (up to the close
/// timeout) while the client reads.
pub fn a_client_behind_on_its_reading_gets_everything_before_1001(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1001, going away)",
        "ch08-production/shutdown.md#the-turn-that-stops",
    );
    let close_timeout = server.close_timeout();
    let chat = server.chat();
    let mut program = server.launch();
    let address = program.address();
    let (mut ann, _) = join(address, "ann");
    let (mut late, _) = join(address, "late");
    assert_eq!(read_json(&mut ann), super::chat::joined("late"));
    let length = chat.big_text_len(server);
    let texts: Vec<String> = (0..)
        .map(|i| format!("{i:04}{}", "x".repeat(length - 4)))
        .take((super::game_loop::socket_buffers_hold() + server.max_unsent_bytes() / 2) / length)
        .collect();
    for text in &texts {
        send_text(&mut ann, &message(text));
        assert!(
            read_json(&mut ann) == said("ann", text),
            "ann hears her message"
        );
    }
    program.signal(Signal::Term);
    let signalled = Instant::now();
    let heard = messages_then_1001(&mut late, "the late reader", Signal::Term);
    let lost = texts
        .iter()
        .filter(|text| !heard.contains(&said("ann", text)))
        .count();
    assert!(
        lost == 0,
        "the late reader got its close 1001 without {lost} of the {} messages that went \
         round before the SIGTERM: a close frame goes after what is queued for the client",
        texts.len()
    );
    send_frame(&mut late, true, CLOSE, &1001u16.to_be_bytes());
    let _ = late.shutdown(Shutdown::Write);
    messages_then_1001(&mut ann, "ann", Signal::Term);
    send_frame(&mut ann, true, CLOSE, &1001u16.to_be_bytes());
    let _ = ann.shutdown(Shutdown::Write);
    let wait = close_timeout.saturating_sub(signalled.elapsed()) + MARGIN;
    expect_exit_0(&mut *program, wait, "SIGTERM and every client's close");
}

/// Once it is stopping, the server accepts no one: a client still sending
/// its request gets 503 (or is hung up on), and a newcomer cannot connect
/// (the listener is closed) or is turned away without a WebSocket.
pub fn once_stopping_it_accepts_no_one(server: &Server) {
    about(
        "RFC 9110, section 15.6.4 (503)",
        "ch08-production/shutdown.md#the-turn-that-stops",
    );
    let close_timeout = server.close_timeout();
    let mut program = server.launch();
    let address = program.address();
    // One that will not answer the close frame keeps the server waiting.
    let (mut stays, _) = join(address, "stays");
    let mut half_a_request = connect(address);
    send_raw(&mut half_a_request, b"GET / HTTP/1.1\r\nHost: x\r\n");
    // The request is read before the signal: a WebSocket's ping proves it.
    let mut probe = ws_handshake(address);
    send_frame(&mut probe, true, PING, b"before");
    assert_eq!(read_frame(&mut probe).opcode, PONG);
    program.signal(Signal::Term);
    let signalled = Instant::now();
    messages_then_1001(&mut stays, "a client in the chat", Signal::Term);
    let answer = read_to_close(&mut half_a_request);
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 503"),
        "a client still sending its request when the server stops gets 503 Service \
         Unavailable, or is hung up on; it got {:?}",
        status_line(&answer)
    );
    // The server has seen the signal: from now on, nobody gets in.
    match TcpStream::connect_timeout(&address, patience()) {
        Err(_) => {}
        Ok(stream) => {
            drop(stream);
            let mut newcomer = connect(address);
            let _ = std::io::Write::write_all(&mut newcomer, upgrade_request(address).as_bytes());
            let mut answer = Vec::new();
            let _ = newcomer.read_to_end(&mut answer);
            let answer = String::from_utf8_lossy(&answer);
            assert!(
                !answer.starts_with("HTTP/1.1 101"),
                "a server that is shutting down accepts no new WebSocket; it answered \
                 a newcomer with `{}`",
                status_line(&answer)
            );
        }
    }
    let wait = close_timeout.saturating_sub(signalled.elapsed()) + MARGIN;
    expect_exit_0(&mut *program, wait, "SIGTERM and the close timeout");
}

/// A fresh server with two clients that will never answer its close frame
/// (`mute` reads it and says nothing, `deaf` reads nothing at all), sent
/// `signal`: when, once `mute` has its close 1001.
#[track_caller]
fn signalled_with_clients_who_never_close(
    server: &Server,
    signal: Signal,
) -> (Box<dyn Instance>, Conn, Conn, Instant) {
    let mut program = server.launch();
    let address = program.address();
    let (mut mute, _) = join(address, "mute");
    let (deaf, _) = join(address, "deaf");
    program.signal(signal);
    let signalled = Instant::now();
    messages_then_1001(&mut mute, "mute", signal);
    (program, mute, deaf, signalled)
}

/// Clients that never answer the close frame (one that reads it and says
/// nothing, one that reads nothing at all) keep the server no longer than
/// the close timeout: it exits with 0 anyway.
pub fn clients_that_do_not_answer_the_close_keep_it_no_longer_than_the_close_timeout(
    server: &Server,
) {
    about(
        "RFC 6455, section 7.1.1 (closing the connection)",
        "ch08-production/shutdown.md#the-turn-that-stops",
    );
    let close_timeout = server.close_timeout();
    let (mut program, _mute, _deaf, signalled) =
        signalled_with_clients_who_never_close(server, Signal::Term);
    let wait = close_timeout.saturating_sub(signalled.elapsed()) + MARGIN;
    expect_exit_0(
        &mut *program,
        wait,
        "SIGTERM, with two clients that never answer the close frame, past the close timeout",
    );
}

/// A second signal, while the server waits for its clients' close frames,
/// ends it at once: an operator who presses Ctrl-C twice means it.
pub fn a_second_signal_exits_at_once(server: &Server) {
    about(
        "RFC 6455, section 7.1.1 (closing the connection)",
        "ch08-production/shutdown.md#the-turn-that-stops",
    );
    let close_timeout = server.close_timeout();
    let (mut program, _mute, _deaf, _) =
        signalled_with_clients_who_never_close(server, Signal::Int);
    // It waits for the close frame that never comes: a second Ctrl-C.
    program.signal(Signal::Int);
    let at_once = close_timeout / 4;
    assert!(
        program.wait(at_once).is_some(),
        "after a second SIGINT the server was still running {}: it must exit at once, \
         without waiting for the clients (the close timeout is {})",
        trace::seconds(at_once),
        trace::seconds(close_timeout)
    );
}
