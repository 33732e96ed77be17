//! The memory a server holds for its clients has a bound in total, not only
//! per client: many clients within their own limits must not be able to
//! make the server hold more than it can spare. Each stage runs as its own
//! program, so that its memory can be read from `/proc` (Linux only).
#![cfg(target_os = "linux")]

use std::io::{ErrorKind, Write};
use std::thread;
use std::time::Duration;
use ws_tests::*;

/// The most memory the program has held at any time (its peak resident set).
fn peak_memory_mib(program: &Program) -> usize {
    let status = std::fs::read_to_string(format!("/proc/{}/status", program.child.id())).unwrap();
    let line = status
        .lines()
        .find(|line| line.starts_with("VmHWM:"))
        .unwrap();
    let kib: usize = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    kib / 1024
}

// ANCHOR: unfinished_big_messages
/// Stage 4 accepts messages of 16 MiB. Clients that each send 15 MiB of
/// one and then go quiet would make it hold all of it, for as long as they
/// like; past its budget it closes the biggest of them with 1008.
#[test]
fn unfinished_big_messages_stay_within_the_budget() {
    let program = Program::start("step-04");
    let len = 15 * 1024 * 1024;
    let mut quiet = Vec::new();
    for _ in 0..8 {
        let mut stream = ws_handshake(program.address);
        let mask = next_mask();
        stream
            .write_all(&frame_header(0x82, len as u64 + 1, Some(mask)))
            .unwrap();
        let sent = stream.write_all(&vec![b'x'; len]);
        // The server may have closed this one already, as one of the biggest.
        assert!(sent.is_ok() || sent.unwrap_err().kind() != ErrorKind::TimedOut);
        quiet.push(stream);
    }
    thread::sleep(Duration::from_millis(500));
    let peak = peak_memory_mib(&program);
    println!("step-04: at most {peak} MiB");
    assert!(peak < 96, "the server held {peak} MiB");
    let mut closed = 0;
    for stream in &mut quiet {
        stream
            .set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        if matches!(try_read_frame(stream), Ok(frame) if frame.opcode == CLOSE) {
            closed += 1;
        }
    }
    assert!(closed >= 3, "only {closed} of 8 were closed");
    // Whoever is still there, and whoever comes next, can chat.
    let mut next = ws_handshake(program.address);
    send_frame(&mut next, true, TEXT, b"still here");
    assert_eq!(read_frame(&mut next).payload, b"still here");
}
// ANCHOR_END: unfinished_big_messages

/// Sends a chat request and reads what comes back until `expected` does.
fn send_and_hear(stream: &mut Conn, text: &str, expected: &str) {
    send_frame(stream, true, TEXT, text.as_bytes());
    hear(stream, expected);
}

fn hear(stream: &mut Conn, expected: &str) {
    loop {
        let frame = read_frame(stream);
        assert_eq!(frame.opcode, TEXT, "{frame:?}");
        if frame.payload == expected.as_bytes() {
            return;
        }
        // Join and leave notices come in between.
        let text = String::from_utf8_lossy(&frame.payload);
        assert!(!text.contains("\"message\""), "out of order: {text:.80}");
    }
}

/// Forty clients that join the chat and never read, while another floods
/// it: each may fall behind by its own limit, but together they stay within
/// the budget, and the clients who read get every message.
fn clients_that_never_read_stay_within_the_budget(stage: &str, flags: &[&str]) {
    let program = Program::start_with(stage, flags);
    let join = |name: &str| {
        let mut stream = ws_handshake(program.address);
        let request = format!(r#"{{"type":"join","name":"{name}"}}"#);
        send_frame(&mut stream, true, TEXT, request.as_bytes());
        stream
    };
    let _never_read: Vec<Conn> = (0..40).map(|i| join(&format!("quiet{i}"))).collect();
    let mut reader = join("reader");
    let mut flooder = join("flooder");
    let text = "x".repeat(60 * 1024);
    let request = format!(r#"{{"type":"message","text":"{text}"}}"#);
    let said = format!(r#"{{"type":"message","from":"flooder","text":"{text}"}}"#);
    for _ in 0..300 {
        send_and_hear(&mut flooder, &request, &said);
        hear(&mut reader, &said);
    }
    let peak = peak_memory_mib(&program);
    println!("{stage}: at most {peak} MiB");
    assert!(peak < 64, "{stage}: the server held {peak} MiB");
}

#[test]
fn step_05_clients_that_never_read_stay_within_the_budget() {
    clients_that_never_read_stay_within_the_budget("step-05", &[]);
}

#[test]
fn step_06_clients_that_never_read_stay_within_the_budget() {
    clients_that_never_read_stay_within_the_budget("step-06", &[]);
}

#[test]
fn step_07_clients_that_never_read_stay_within_the_budget() {
    clients_that_never_read_stay_within_the_budget("step-07", &[]);
}

/// From stage 8 on, the flood is more than a person sends: let it through.
const FLOOD: &[&str] = &["--max-messages-per-second", "1000"];

#[test]
fn step_08_clients_that_never_read_stay_within_the_budget() {
    clients_that_never_read_stay_within_the_budget("step-08", FLOOD);
}

#[test]
fn step_09_clients_that_never_read_stay_within_the_budget() {
    clients_that_never_read_stay_within_the_budget("step-09", FLOOD);
}
