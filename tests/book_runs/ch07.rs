//! The runs chapter 7 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[("step-07-two-users.log", step_07_two_users)];

/// Chapter 7, "What you should see": two users join and talk, a third
/// connection comes and goes without a word, and one user leaves.
fn step_07_two_users() -> String {
    let mut run = Run::start("step-07");
    let mut alice = join(run.address(), "alice");
    let mut bob = join(run.address(), "bob");
    read_text(&mut alice);
    // A page that opens a WebSocket and is closed before it joins.
    let lurker = ws_handshake(run.address());
    drop(lurker);
    run.wait_for("left without a close frame");
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
