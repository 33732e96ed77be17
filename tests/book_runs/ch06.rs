//! The runs chapter 6 shows: see `book_runs.rs`.

use super::*;
use std::process::Command;
use std::time::Instant;

pub const RUNS: Runs = &[("step-06-accept-paused.log", step_06_accept_paused)];

/// The command the log says started the server, as the reader types it.
const COMMAND: &str = "(ulimit -n 20 && exec target/debug/step-06)";

/// The log of a program, line by line, as it comes.
struct Log {
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Log {
    /// Reads lines until one contains `wanted`, and says whether one did
    /// before `patience()` ran out.
    fn wait_for(&mut self, wanted: &str) -> bool {
        let deadline = Instant::now() + ws_tests::patience();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let Ok(line) = self.lines.recv_timeout(left) else {
                return false;
            };
            let found = line.contains(wanted);
            self.seen.push(line);
            if found {
                return true;
            }
        }
        false
    }

    /// Everything logged until the program falls quiet.
    fn rest(&mut self) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            self.seen.push(line);
        }
    }
}

/// Chapter 6, "When `accept` fails": stage 6 with room for 20 open files.
/// Clients connect and upgrade one after the other until `accept` fails;
/// then the first of them closes, which frees a descriptor, and the one
/// that was waiting is accepted once the pause is over.
///
/// How many clients fit depends on the descriptors the program was given
/// when it started (a shell may hand some down), so the log shows the first
/// client, then everything from the last one accepted on. On Linux, the
/// `accept` right after the last descriptor is taken fails at once, with
/// nobody waiting: the first failure; the second is the waiting client's.
/// On a loaded machine the first client's connection may take longer than
/// a pause to end: the failures after those two, one per pause, are left
/// out.
fn step_06_accept_paused() -> String {
    // `Program::start` builds the binary, which is then started through a
    // shell, with the limit the chapter's command sets.
    drop(Program::start("step-06"));
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().unwrap().parent().unwrap().join("step-06");
    let mut command = Command::new("sh");
    command
        .args(["-c", r#"ulimit -n 20 && exec "$0" 127.0.0.1:0"#])
        .arg(&binary);
    // Killed when dropped, like any other run's program.
    let mut program = Program::spawn(command);
    let stdout = program.stdout.take().unwrap();
    let address = program.address;
    let first = format!("Listening on http://{address}");
    let (sender, lines) = mpsc::channel();
    thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut log = Log {
        lines,
        seen: vec![first],
    };

    let mut clients = Vec::new();
    let mut waiting = loop {
        assert!(clients.len() < 100, "accept never failed");
        let mut stream = ws_tests::connect(address);
        stream
            .write_all(ws_tests::upgrade_request(address).as_bytes())
            .unwrap();
        let port = stream.local_addr().unwrap().port();
        // Accepted, or `accept` failed on it: whichever the log says first.
        let accepted = format!(":{port}: connected");
        let outcome = loop {
            let line = log
                .lines
                .recv_timeout(ws_tests::patience())
                .expect("the log went quiet");
            let outcome = if line.contains(&accepted) {
                Some(true)
            } else if line.contains("accept failed") {
                Some(false)
            } else {
                None
            };
            log.seen.push(line);
            if let Some(outcome) = outcome {
                break outcome;
            }
        };
        if !outcome {
            break stream;
        }
        assert!(log.wait_for(&format!(":{port}: handshake done")));
        ws_tests::check_101(&ws_tests::read_http_head(&mut stream));
        clients.push(stream);
    };
    assert!(clients.len() >= 2, "too few clients were accepted");

    // The first client leaves, with a close frame: its descriptor is free.
    let mut leaving = clients.remove(0);
    let leaving_port = leaving.local_addr().unwrap().port();
    leaving
        .write_all(&client_frame(true, 0x8, &1000u16.to_be_bytes()))
        .unwrap();
    read_frame(&mut leaving);
    drop(leaving);
    assert!(log.wait_for(&format!(":{leaving_port}: disconnected")));
    // After the pause, the client that was waiting is accepted.
    let waiting_port = waiting.local_addr().unwrap().port();
    assert!(log.wait_for(&format!(":{waiting_port}: handshake done")));
    ws_tests::check_101(&ws_tests::read_http_head(&mut waiting));
    log.rest();

    // The first client, then everything from the last one accepted before
    // the failure on.
    let last_port = clients.last().unwrap().local_addr().unwrap().port();
    let last_accepted = format!(":{last_port}: connected");
    let from = log
        .seen
        .iter()
        .position(|line| line.contains(&last_accepted))
        .unwrap();
    let first_client = format!(":{leaving_port}: ");
    let mut shown = vec![format!("$ {COMMAND}")];
    let mut failures = 0;
    for (index, line) in log.seen.iter().enumerate() {
        if index < from {
            if !line.starts_with("127.0.0.1:") || line.contains(&first_client) {
                shown.push(line.clone());
            }
            continue;
        }
        if index == from {
            shown.push("...".to_string());
        }
        if line.contains("accept failed") {
            failures += 1;
            if failures > 2 {
                continue;
            }
        }
        shown.push(line.clone());
    }
    normalize_ports(&(shown.join("\n") + "\n"), address)
}
