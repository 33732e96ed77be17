//! Every stage's log, with the program run as a reader runs it: a log that
//! nobody reads any more, or that nobody empties, must not stop the server.
//! (`println!` panics in the first case and waits in the second, and the
//! server with it.)

use std::io::BufRead;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};
use ws_tests::*;

const STAGES: [&str; 9] = [
    "step-01", "step-02", "step-03", "step-04", "step-05", "step-06", "step-07", "step-08",
    "step-09",
];

/// A plain request, and the check that it got its answer.
fn get(program: &Program, target: &str) {
    let request = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    let response = exchange(program.address, request.as_bytes());
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
}

// ANCHOR: test_nobody_reads
/// `cargo run -p step-06 | head -1`: the reader of the log is gone after
/// the first line, and every line after it fails to be written.
#[test]
fn a_log_nobody_reads_any_more_does_not_stop_the_server() {
    for stage in STAGES {
        let mut program = Program::start(stage);
        drop(program.stdout.take());
        for i in 0..20 {
            get(&program, &format!("/after-the-reader-left-{i}"));
        }
        assert!(program.is_running(), "{stage} exited");
    }
}
// ANCHOR_END: test_nobody_reads

// ANCHOR: test_full_log
/// A pipe that nobody empties: once it is full, a write would wait for
/// ever. The server drops log lines instead, goes on serving, and says how
/// many it dropped once the log is read again.
#[test]
fn a_full_log_does_not_stop_the_server() {
    for stage in STAGES {
        let mut program = Program::start(stage);
        // Each request logs about four lines, of up to 4 KiB here: enough to
        // fill the pipe (64 KiB) and the log's queue (1024 lines).
        let padding = "x".repeat(4000);
        let started = Instant::now();
        for i in 0..400 {
            get(&program, &format!("/{i}/{padding}"));
        }
        let elapsed = started.elapsed();
        assert!(elapsed < Duration::from_secs(20), "{stage}: {elapsed:?}");
        // Now someone reads the log again.
        let stdout = program.stdout.take().unwrap();
        let (lines, received) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + patience();
        let mut told = None;
        while told.is_none() && Instant::now() < deadline {
            get(&program, "/is-anyone-there");
            while let Ok(line) = received.recv_timeout(Duration::from_millis(10)) {
                if line.ends_with("log lines dropped)") {
                    told = Some(line);
                }
            }
        }
        let told = told.unwrap_or_else(|| panic!("{stage}: no line said what was dropped"));
        assert!(told.starts_with('('), "{stage}: {told:?}");
        assert!(program.is_running(), "{stage} exited");
    }
}
// ANCHOR_END: test_full_log

// ANCHOR: test_escaped
/// What a client sends reaches the log escaped: an escape code in a request
/// target does not turn the operator's terminal red, and a CR cannot
/// overwrite the line it is on.
#[test]
fn client_text_reaches_the_log_escaped() {
    for stage in STAGES {
        let mut program = Program::start(stage);
        let response = exchange(
            program.address,
            b"GET /\x1b[31mred\rX HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        assert_eq!(
            status_line(&response),
            "HTTP/1.1 200 OK",
            "{stage}: {response:?}"
        );
        let mut stdout = program.stdout.take().unwrap();
        let mut line = String::new();
        while !line.contains("GET /") {
            line.clear();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "{stage}: the log ended"
            );
        }
        assert!(
            line.ends_with(": GET /\\u{1b}[31mred\\rX\n"),
            "{stage}: {line:?}"
        );
    }
}
// ANCHOR_END: test_escaped
