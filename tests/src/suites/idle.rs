//! What a client can see of poll(2): a server that sleeps until a socket is
//! ready answers at once, however long it was idle. A loop that sleeps a
//! little after each idle turn (stage 4's and 5's, up to 5 ms) answers a
//! message that comes while it sleeps only when it wakes up.
//!
//! (What poll saves, the CPU of an idle server, is not visible over the
//! network: the benchmark measures it, `cargo run --release -p bench`.)

use crate::*;
use std::thread;
use std::time::{Duration, Instant};

/// Pings after a quiet spell each, and how long each pong took.
fn pong_times(server: &Server, count: usize, quiet: Duration) -> Vec<Duration> {
    let mut stream = ws_handshake(server.address);
    let mut times = Vec::new();
    for i in 0..count {
        thread::sleep(quiet);
        let ping = client_frame(true, PING, format!("ping {i}").as_bytes());
        let started = Instant::now();
        send_raw(&mut stream, &ping);
        let pong = read_frame(&mut stream);
        times.push(started.elapsed());
        assert!(pong.opcode == PONG, "a ping gets a pong; got {pong:?}");
    }
    close_with(&mut stream, 1000);
    times
}

/// After 20 ms of quiet each, 30 pings: at least two thirds of their pongs
/// must come back within 1 ms. A loop that sleeps up to 5 ms when idle
/// answers most of them later than that.
pub fn a_message_after_a_quiet_spell_is_answered_at_once(server: &Server) {
    about(
        "poll(2): sleep until a socket is ready",
        "ch06-poll/readiness-and-poll.md#readiness-and-poll2",
    );
    let mut times = pong_times(server, 30, Duration::from_millis(20));
    let late = times
        .iter()
        .filter(|time| **time > Duration::from_millis(1))
        .count();
    times.sort();
    let median = times[times.len() / 2];
    assert!(
        late <= times.len() / 3,
        "{late} of {} pongs took more than 1 ms (the median {:.2} ms): the server was \
         asleep when each ping came, and answered when it woke up. A server that waits in \
         poll(2) wakes up when the ping arrives.",
        times.len(),
        median.as_secs_f64() * 1000.0
    );
}
