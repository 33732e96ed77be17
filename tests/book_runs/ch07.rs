//! The runs chapter 7 shows: see `book_runs.rs`.

use super::*;
use ws_tests::patience;

pub const RUNS: Runs = &[("step-07-two-users.log", step_07_two_users)];

/// Chapter 7, "What you should see": two users join and talk, a third
/// connection comes and goes without a word, and one user leaves.
fn step_07_two_users() -> String {
    let mut run = Run::start("step-07");
    let mut alice = ws_handshake(run.address());
    send_text(&mut alice, r#"{"type":"join","name":"alice"}"#);
    read_text(&mut alice);
    let mut bob = ws_handshake(run.address());
    send_text(&mut bob, r#"{"type":"join","name":"bob"}"#);
    read_text(&mut bob);
    read_text(&mut alice);
    // A page that opens a WebSocket and is closed before it joins.
    let lurker = ws_handshake(run.address());
    drop(lurker);
    wait_for(&mut run, "left without a close frame");
    send_text(&mut alice, r#"{"type":"message","text":"Hi bob!"}"#);
    read_text(&mut alice);
    read_text(&mut bob);
    // Bob closes his tab: the browser sends a close frame with 1001.
    bob.write_all(&client_frame(true, 0x8, &[0x03, 0xe9]))
        .unwrap();
    read_frame(&mut bob);
    drop(bob);
    read_text(&mut alice);
    run.finish()
}

/// Waits until the program logs a line that ends with `end`, keeping every
/// line it logs on the way, so that the next client acts after it.
fn wait_for(run: &mut Run, end: &str) {
    loop {
        let line = run
            .lines
            .recv_timeout(patience())
            .unwrap_or_else(|_| panic!("the program never logged {end:?}"));
        let found = line.ends_with(end);
        run.log.push(line);
        if found {
            return;
        }
    }
}
