//! The runs chapter 5 shows: see `book_runs.rs`.

use super::*;

pub const RUNS: Runs = &[("step-05-two-users.log", step_05_two_users)];

/// Chapter 5, "What you should see": two users join, talk, and one leaves.
fn step_05_two_users() -> String {
    let run = Run::start("step-05");
    let mut alice = ws_handshake(run.address());
    send_text(&mut alice, r#"{"type":"join","name":"alice"}"#);
    read_text(&mut alice);
    let mut bob = ws_handshake(run.address());
    send_text(&mut bob, r#"{"type":"join","name":"bob"}"#);
    read_text(&mut bob);
    read_text(&mut alice);
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
