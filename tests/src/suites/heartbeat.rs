//! Stage 8's heartbeat, over real TCP: a WebSocket that has sent nothing
//! for the ping interval gets a ping; one that then still sends nothing at
//! all for the idle timeout is let go, and the others hear it leave; one
//! that answers, or keeps talking, or sends pongs of its own, stays. And a
//! WebSocket that never joins the chat is closed with 1008 after the join
//! timeout, while one that joins is not.
//!
//! Why: a client whose network vanished (a laptop closed, a phone out of
//! range) sends no FIN and no reset; without a ping, its connection, its
//! name and its buffers are held for ever. The checks see the server's
//! pings as they are ([`Conn::see_pings`]); the times come from the spec,
//! which the program is started with (`--ping-interval 1`...), and each
//! allows [`MARGIN`] for a loaded machine.

use super::chat::{join, joined, left, message, read_json, said, send_text};
use crate::*;
use std::io;
use std::thread;
use std::time::{Duration, Instant};

/// How late a deadline of the server may be acted on, on a busy machine.
const MARGIN: Duration = Duration::from_secs(1);

/// How early: the server and the check read the same clock, but the check
/// starts timing a little before the server does.
const EARLY: Duration = Duration::from_millis(20);

/// Reads one frame, waiting up to `wait`.
fn read_within(stream: &mut Conn, wait: Duration) -> io::Result<Frame> {
    stream.set_read_timeout(Some(wait.max(Duration::from_millis(1))))?;
    let frame = try_read_frame(stream);
    stream.set_read_timeout(Some(patience()))?;
    frame
}

fn is_timeout(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// What happened to a read of `wait`, in the words of a report.
fn happened(error: &io::Error, wait: Duration) -> String {
    if is_timeout(error) {
        format!("nothing came within {}", trace::seconds(wait))
    } else {
        what_happened(error)
    }
}

/// Connects and joins as `name`, seeing the server's pings itself; returns
/// the connection and when the join was sent (the start of its silence).
#[track_caller]
fn join_seeing_pings(server: &Server, name: &str) -> (Conn, Instant) {
    let mut stream = ws_handshake(server.address);
    stream.see_pings();
    let sent = Instant::now();
    send_text(
        &mut stream,
        &format!(r#"{{"type":"join","name":"{name}"}}"#),
    );
    let welcome = read_json(&mut stream);
    assert!(
        welcome.starts_with(r#"{"type":"welcome""#),
        "a join as {name:?} gets a welcome; got {welcome}"
    );
    (stream, sent)
}

/// Waits for the next frame, which must be a ping, within `wait`; returns
/// it and when it came.
#[track_caller]
fn expect_ping(stream: &mut Conn, wait: Duration, why: &str) -> (Frame, Instant) {
    match read_within(stream, wait) {
        Ok(frame) if frame.opcode == PING => (frame, Instant::now()),
        Ok(frame) => panic!("expected a ping ({why}), got {frame:?}"),
        Err(error) => panic!("expected a ping ({why}): {}", happened(&error, wait)),
    }
}

/// ann, in the chat and seeing her pings, and how long she must stay: a
/// ping interval and an idle timeout, which would see her let go if the
/// server did not count what she does as being alive, and a ping interval
/// more.
#[track_caller]
fn staying(server: &Server) -> (Conn, Duration) {
    let stay = server.ping_interval() + server.idle_timeout() + server.ping_interval();
    (join_seeing_pings(server, "ann").0, stay)
}

/// Sends a message and reads it back: the client is still in the chat.
#[track_caller]
fn still_chatting(stream: &mut Conn, name: &str, text: &str) {
    // A ping may come before the answer: it is not what this is about.
    stream.answer_pings();
    send_text(stream, &message(text));
    let heard = read_json(stream);
    assert!(
        heard == said(name, text),
        "{name} is still in the chat and hears its own message, {}; got {heard}",
        said(name, text)
    );
}

/// A joined client that says nothing gets a ping once it has been quiet
/// for the ping interval: not before, and not much after. It answers with
/// a pong, and the next ping comes a ping interval after that pong.
pub fn a_quiet_client_is_pinged_after_the_ping_interval_not_before(server: &Server) {
    about(
        "RFC 6455, section 5.5.2 (ping)",
        "ch08-production/heartbeats.md#the-rule",
    );
    let interval = server.ping_interval();
    let (mut ann, quiet_since) = join_seeing_pings(server, "ann");
    let (ping, came) = expect_ping(
        &mut ann,
        interval + MARGIN,
        "the client has sent nothing for the ping interval",
    );
    let quiet = came - quiet_since;
    assert!(
        quiet + EARLY >= interval,
        "a ping came after {quiet:?} of quiet: the server must wait for the ping interval \
         ({interval:?}) of silence first"
    );
    // The pong answers it, with the same payload: the client is alive.
    send_frame(&mut ann, true, PONG, &ping.payload);
    let answered = Instant::now();
    let (_, came) = expect_ping(
        &mut ann,
        interval + MARGIN,
        "a ping interval after the client's pong",
    );
    let quiet = came - answered;
    assert!(
        quiet + EARLY >= interval,
        "the second ping came {quiet:?} after the pong that answered the first: a pong \
         counts as being heard from, and the next ping waits a whole ping interval ({interval:?})"
    );
    send_frame(&mut ann, true, PONG, &[]);
    still_chatting(&mut ann, "ann", "pinged twice, still here");
}

/// A client that stops answering (it never pongs, and sends nothing) is
/// let go within the ping interval and the idle timeout, and the others
/// hear it leave. Not before: it has the idle timeout to answer the ping.
pub fn a_client_that_stops_answering_is_dropped_and_the_others_hear_it_leave(server: &Server) {
    about(
        "RFC 6455, section 5.5.2 (ping)",
        "ch08-production/heartbeats.md#the-rule",
    );
    let interval = server.ping_interval();
    let idle = server.idle_timeout();
    let (mut ann, _) = join(server.address, "ann");
    let (mut gone, quiet_since) = join_seeing_pings(server, "gone");
    assert_eq!(read_json(&mut ann), joined("gone"));
    // `gone` reads nothing and sends nothing from now on; ann answers the
    // pings she gets as she waits.
    let wait = interval + idle + MARGIN;
    let notice = match read_within(&mut ann, wait) {
        Ok(frame) => frame.text(),
        Err(error) => panic!(
            "expected the leave notice of the client that stopped answering, {}, within \
             the ping interval, the idle timeout, and {} to spare: {}",
            left("gone"),
            trace::seconds(MARGIN),
            happened(&error, wait)
        ),
    };
    let after = quiet_since.elapsed();
    let notice = json::canonical_only(&notice, &["type", "name"]).unwrap_or(notice);
    assert!(
        notice == left("gone"),
        "the others hear the silent client leave, {}; got {notice}",
        left("gone")
    );
    assert!(
        after + EARLY >= interval + idle,
        "the silent client was let go after {after:?}: it has the ping interval \
         ({interval:?}) and then the idle timeout ({idle:?}) to answer the ping"
    );
    // What it got: a ping, then (maybe a close frame, then) the end.
    let (ping, _) = expect_ping(&mut gone, patience(), "before it was let go");
    assert!(ping.fin, "a ping is never fragmented");
    let (ended, _) = read_until_dropped(&mut gone);
    assert!(
        ended,
        "the server must close the connection of the client that stopped answering"
    );
    still_chatting(&mut ann, "ann", "gone is gone");
}

/// A client that answers every ping stays, for longer than the ping
/// interval and the idle timeout, and a ping interval more.
pub fn a_client_that_answers_pings_stays_connected(server: &Server) {
    about(
        "RFC 6455, section 5.5.3 (pong)",
        "ch08-production/heartbeats.md#the-rule",
    );
    let interval = server.ping_interval();
    let (mut ann, stay) = staying(server);
    let started = Instant::now();
    let mut pings = 0;
    while started.elapsed() < stay {
        let left = stay.saturating_sub(started.elapsed());
        match read_within(&mut ann, left) {
            Ok(frame) if frame.opcode == PING => {
                pings += 1;
                send_frame(&mut ann, true, PONG, &frame.payload);
            }
            Ok(frame) => panic!("a quiet client gets nothing but pings; got {frame:?}"),
            Err(error) if is_timeout(&error) => {}
            Err(error) => panic!(
                "a client that answered each of its {pings} pings with a pong was let go \
                 after {:?}: {}",
                started.elapsed(),
                what_happened(&error)
            ),
        }
    }
    assert!(
        pings >= 2,
        "in {stay:?} of quiet, with a ping interval of {interval:?}, a client gets a ping \
         every time it has been quiet that long: {pings} came"
    );
    still_chatting(&mut ann, "ann", "answered every ping");
}

/// A client that keeps sending is heard from all the time: it gets no ping
/// (the ping waits for a silence of the ping interval, it does not come on
/// a clock), and it stays, though it never sends a pong.
pub fn a_client_that_keeps_sending_is_never_pinged(server: &Server) {
    about(
        "RFC 6455, section 5.5.2 (ping)",
        "ch08-production/heartbeats.md#the-rule",
    );
    let interval = server.ping_interval();
    let (mut ann, stay) = staying(server);
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < stay {
        thread::sleep(interval / 3);
        let text = format!("talking {i}");
        send_text(&mut ann, &message(&text));
        let frame = read_frame(&mut ann);
        assert!(
            frame.opcode != PING,
            "a client that sends a message every {:?} got a ping after {:?}: it is never \
             quiet for the ping interval ({interval:?})",
            interval / 3,
            started.elapsed()
        );
        let heard = json::canonical_only(&frame.text(), &["type", "from", "text"]);
        assert!(
            heard == Some(said("ann", &text)),
            "expected {}, got {frame:?}",
            said("ann", &text)
        );
        i += 1;
    }
    still_chatting(&mut ann, "ann", "never pinged");
}

/// A pong nobody asked for is allowed (RFC 6455 calls it a unidirectional
/// heartbeat) and counts as being heard from: a client that sends one now
/// and then, and nothing else, is never pinged and stays.
pub fn an_unsolicited_pong_counts_as_being_alive(server: &Server) {
    about(
        "RFC 6455, section 5.5.3 (pong)",
        "ch08-production/heartbeats.md#the-rule",
    );
    let interval = server.ping_interval();
    let (mut ann, stay) = staying(server);
    let started = Instant::now();
    while started.elapsed() < stay {
        send_frame(&mut ann, true, PONG, b"still here");
        // Nothing comes back: no answer to a pong, and no ping either.
        expect_silence(&mut ann, interval / 3);
    }
    still_chatting(&mut ann, "ann", "pongs of my own");
}

/// A WebSocket that never joins the chat is closed with 1008 (policy
/// violation) once the join timeout has passed since its handshake; one
/// that joins, even late, is not. (Both answer their pings meanwhile.)
pub fn a_websocket_that_never_joins_gets_1008_after_the_join_timeout(server: &Server) {
    about(
        "RFC 6455, section 7.4.1 (1008, policy violation)",
        "ch08-production/heartbeats.md#joining-in-time",
    );
    let timeout = server.join_timeout();
    let address = server.address;
    let opened = Instant::now();
    let mut lurker = ws_handshake(address);
    let mut late = ws_handshake(address);
    // The late one joins halfway through the join timeout; both answer
    // their pings meanwhile.
    expect_silence_on_all(&mut [&mut lurker, &mut late], timeout / 2);
    send_text(&mut late, r#"{"type":"join","name":"late"}"#);
    let welcome = read_json(&mut late);
    assert!(
        welcome.starts_with(r#"{"type":"welcome""#),
        "a join before the join timeout gets a welcome; got {welcome}"
    );
    // Waiting for the lurker's close, the late joiner answers its pings.
    let close = loop {
        match read_within(&mut lurker, Duration::from_millis(50)) {
            Ok(frame) => break frame,
            Err(error) if opened.elapsed() < timeout + MARGIN && is_timeout(&error) => {
                expect_silence(&mut late, Duration::from_millis(50));
            }
            Err(error) => panic!(
                "expected a close frame with 1008 for the WebSocket that never joined, \
                 within the join timeout ({timeout:?}) and {} to spare: {}",
                trace::seconds(MARGIN),
                what_happened(&error)
            ),
        }
    };
    let after = opened.elapsed();
    assert!(
        close.opcode == CLOSE && close.close_code() == Some(1008),
        "a WebSocket that never joined gets a close frame with 1008; got {close:?}"
    );
    assert!(
        after + EARLY >= timeout,
        "the WebSocket that never joined was closed after {after:?}: it has the join timeout \
         ({timeout:?}) to join"
    );
    send_frame(&mut lurker, true, CLOSE, &1008u16.to_be_bytes());
    expect_end_of_stream(&mut lurker);
    // The late joiner is past the join timeout too, and still in the chat.
    expect_silence(&mut late, MARGIN);
    still_chatting(&mut late, "late", "joined in time");
}
