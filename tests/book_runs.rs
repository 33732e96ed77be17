//! The output the book shows, a module of `book.rs`: server logs and
//! conversations, each made by a run of a stage's own program that a test
//! can repeat, written to `book/src/runs/NAME` and checked fresh with the
//! diffs (`book_diffs_are_fresh`). A page shows one with
//! `{{#include runs/NAME}}` in a `text` or `console` block.
//!
//! A run's output is the same on every machine: the port the program
//! listens on is shown as 8080, as if it ran with its defaults, and the
//! clients' ports as 50001, 50002, ... in the order they first appear.

use super::*;
use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;
pub use ws_tests::{Program, client_frame, exchange, read_frame, send_frame, ws_handshake};

// The runs of each chapter: each file has a `RUNS` table of the file each
// run writes under `book/src/runs/`, and the function that makes it.
#[path = "book_runs/ch01.rs"]
mod ch01;
#[path = "book_runs/ch02.rs"]
mod ch02;
#[path = "book_runs/ch03.rs"]
mod ch03;
#[path = "book_runs/ch04.rs"]
mod ch04;
#[path = "book_runs/ch05.rs"]
mod ch05;
#[path = "book_runs/ch06.rs"]
mod ch06;
#[path = "book_runs/ch07.rs"]
mod ch07;
#[path = "book_runs/ch08.rs"]
mod ch08;
#[path = "book_runs/ch09.rs"]
mod ch09;

/// A run: the file it writes under `book/src/runs/`, and how it is made.
type Runs = &'static [(&'static str, fn() -> String)];

/// Every run's output, by path relative to `book/src`.
pub fn generated_runs() -> BTreeMap<PathBuf, String> {
    let all: [Runs; 9] = [
        ch01::RUNS,
        ch02::RUNS,
        ch03::RUNS,
        ch04::RUNS,
        ch05::RUNS,
        ch06::RUNS,
        ch07::RUNS,
        ch08::RUNS,
        ch09::RUNS,
    ];
    // Each run has a program of its own: they run side by side, since most
    // of their time is spent waiting for a deadline or a quiet log.
    let handles: Vec<_> = all
        .iter()
        .flat_map(|runs| runs.iter())
        .map(|&(name, run)| (name, thread::spawn(run)))
        .collect();
    handles
        .into_iter()
        .map(|(name, handle)| {
            let output = handle
                .join()
                .unwrap_or_else(|_| panic!("the run for runs/{name} failed"));
            (Path::new("runs").join(name), output)
        })
        .collect()
}

/// The runs now in `book/src/runs`.
pub fn runs_on_disk(book_src: &Path) -> BTreeMap<PathBuf, String> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(book_src.join("runs")).into_iter().flatten() {
        let path = entry.unwrap().path();
        let relative = path.strip_prefix(book_src).unwrap().to_path_buf();
        files.insert(relative, fs::read_to_string(&path).unwrap_or_default());
    }
    files
}

/// A stage's program, started as `cargo run -p STAGE` would start it, and
/// everything it has logged so far.
pub struct Run {
    pub program: Program,
    lines: mpsc::Receiver<String>,
    log: Vec<String>,
}

impl Run {
    /// Starts the stage's program, as the reader does with
    /// `cargo run -p STAGE`: the log starts with that command.
    pub fn start(stage: &str) -> Run {
        let program = Program::start(stage);
        Run::with_log(program, format!("$ cargo run -p {stage}"))
    }

    /// Starts the stage's program with options, as
    /// `cargo run -p STAGE -- OPTIONS` does: the log starts with that
    /// command.
    pub fn start_with(stage: &str, options: &[&str]) -> Run {
        let command = format!("$ cargo run -p {stage} -- {}", options.join(" "));
        Run::start_showing(stage, options, command)
    }

    /// Starts the stage's program with options, as [`Run::start_with`]
    /// does, but with `command` as the first line of its log: the command
    /// as the reader types it, where the options of the run (a port) are
    /// not the ones the book shows.
    pub fn start_showing(stage: &str, options: &[&str], command: String) -> Run {
        Run::with_log(Program::start_with(stage, options), command)
    }

    /// The log of `program`, which has logged its first line, after the
    /// command that started it.
    fn with_log(mut program: Program, command: String) -> Run {
        let stdout = program.stdout.take().unwrap();
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let listening = format!("Listening on http://{}", program.address);
        Run {
            program,
            lines,
            log: vec![command, listening],
        }
    }

    pub fn address(&self) -> SocketAddr {
        self.program.address
    }

    /// Sends the program a signal, as Ctrl-C (`SIGINT`) or `kill` (`SIGTERM`)
    /// does.
    pub fn signal(&self, signal: i32) {
        unsafe extern "C" {
            fn kill(pid: i32, signal: i32) -> i32;
        }
        let pid = i32::try_from(self.program.child.id()).unwrap();
        // SAFETY: `kill` only reads its two numbers; the process is ours.
        assert_eq!(unsafe { kill(pid, signal) }, 0, "kill -{signal} {pid}");
    }

    /// Waits until the program logs a line that ends with `end`, keeping
    /// every line it logs on the way, so that the next client acts after it.
    pub fn wait_for(&mut self, end: &str) {
        self.wait_until(ws_tests::patience(), end, |line| line.ends_with(end));
    }

    /// Waits until the program logs a line for which `found` holds, each
    /// line within `wait`, keeping every line it logs on the way; `what`
    /// names the line, should it never come. `found` sees every line.
    pub fn wait_until(&mut self, wait: Duration, what: &str, mut found: impl FnMut(&str) -> bool) {
        loop {
            let line = self
                .lines
                .recv_timeout(wait)
                .unwrap_or_else(|_| panic!("the program never logged {what:?}"));
            let found = found(&line);
            self.log.push(line);
            if found {
                return;
            }
        }
    }

    /// Everything the program logs until it falls quiet (it logs from a
    /// thread of its own, a moment after each event), kept in the log;
    /// `each` sees every line.
    pub fn collect(&mut self, mut each: impl FnMut(&str)) {
        while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(300)) {
            each(&line);
            self.log.push(line);
        }
    }

    /// The log, as the book shows it: everything the program logged until
    /// it fell quiet (it logs from a thread of its own, a moment after each
    /// event), with the ports made the same on every run.
    pub fn finish(mut self) -> String {
        self.collect(|_| {});
        normalize_ports(&self.text(), self.program.address)
    }

    /// The log so far, as it is, a line each.
    pub fn text(&self) -> String {
        self.log.join("\n") + "\n"
    }
}

/// `127.0.0.1:<listening port>` -> `127.0.0.1:8080`, and each client's port
/// -> 50001, 50002, ... in the order they first appear.
pub fn normalize_ports(log: &str, listening: SocketAddr) -> String {
    let listening = listening.to_string();
    number_clients(log, |address| {
        (address == listening).then(|| "127.0.0.1:8080".to_string())
    })
}

/// Every `127.0.0.1:PORT` in `log`: as `known` shows it, if it knows it (a
/// server's), and otherwise (a client's) as `127.0.0.1:50001`, 50002, ...
/// in the order they first appear.
pub fn number_clients(log: &str, known: impl Fn(&str) -> Option<String>) -> String {
    let mut clients: Vec<String> = Vec::new();
    let mut output = String::new();
    let mut rest = log;
    while let Some(at) = rest.find("127.0.0.1:") {
        output.push_str(&rest[..at]);
        let after = &rest[at + "127.0.0.1:".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let address = &rest[at..at + "127.0.0.1:".len() + digits];
        if digits == 0 {
            output.push_str(address);
        } else if let Some(shown) = known(address) {
            output.push_str(&shown);
        } else {
            let index = match clients.iter().position(|client| client == address) {
                Some(index) => index,
                None => {
                    clients.push(address.to_string());
                    clients.len() - 1
                }
            };
            output.push_str(&format!("127.0.0.1:{}", 50001 + index));
        }
        rest = &after[digits..];
    }
    output.push_str(rest);
    output
}

/// Connects to `address` and joins the chat as `name` (see [`join_as`]).
pub fn join(address: SocketAddr, name: &str) -> ws_tests::Conn {
    let mut stream = ws_handshake(address);
    join_as(&mut stream, name);
    stream
}

/// Asks to join the chat as `name`, and reads the answer: the welcome, or
/// why not.
pub fn join_as(stream: &mut ws_tests::Conn, name: &str) {
    send_text(stream, &format!(r#"{{"type":"join","name":"{name}"}}"#));
    read_text(stream);
}

/// Sends one text message.
pub fn send_text(stream: &mut ws_tests::Conn, text: &str) {
    send_frame(stream, true, 0x1, text.as_bytes());
}

/// Reads one text message.
pub fn read_text(stream: &mut ws_tests::Conn) -> String {
    String::from_utf8(read_frame(stream).payload).unwrap()
}

#[test]
fn ports_are_shown_the_same_on_every_run() {
    let listening: SocketAddr = "127.0.0.1:41234".parse().unwrap();
    let log = "Listening on http://127.0.0.1:41234\n127.0.0.1:5555: x\n127.0.0.1:6666: y\n127.0.0.1:5555: z\n";
    assert_eq!(
        normalize_ports(log, listening),
        "Listening on http://127.0.0.1:8080\n127.0.0.1:50001: x\n127.0.0.1:50002: y\n127.0.0.1:50001: z\n"
    );
}
