//! The server's log: one line per event, on standard output.
//!
//! `println!` would do, but for two things a server cannot afford. When
//! nobody reads standard output any more (`cargo run | head -1` after its
//! first line, a log shipper that restarts), `println!` panics, and the
//! server dies with every client. When standard output is a pipe that
//! nobody empties, `println!` waits for room, and the server waits with it:
//! since clients decide how much gets logged, a client could freeze it.
//!
//! So [`log!`](crate::log!) only hands the line to a thread that writes it.
//! The hand-over never waits: a line that does not fit in the queue is
//! dropped, and the log says how many were dropped once it can write again.
//! A write that fails is forgotten: the server does not need its log.
//!
//! Stage 7 counts the system calls of a round trip, and finds the log's:
//! waking the writer for each line, and one write for each line. So the
//! writer, once woken, waits [`GATHER`] for more lines, and writes all it
//! has at once: one wake and one write for many lines.

use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::thread;
use std::time::Duration;

// ANCHOR: log
/// How many lines may wait for the writer before new ones are dropped.
const QUEUE_LINES: usize = 1024;

/// The writer's queue, once [`to_stdout`] has started it.
static QUEUE: OnceLock<SyncSender<String>> = OnceLock::new();

/// Lines dropped since the writer last said how many.
static DROPPED: AtomicUsize = AtomicUsize::new(0);

/// Lines handed to the writer and not written yet.
static PENDING: AtomicUsize = AtomicUsize::new(0);

/// How long the writer, woken by a line, waits for more before it writes.
/// Meanwhile `log!` finds it not waiting, and has no one to wake.
const GATHER: Duration = Duration::from_millis(5);

/// Starts writing the log to standard output. Before that (in the tests,
/// which start the server without its `main`), log lines go nowhere.
pub fn to_stdout() {
    QUEUE.get_or_init(|| {
        let (queue, lines) = mpsc::sync_channel::<String>(QUEUE_LINES);
        thread::spawn(move || {
            // Lines wait here until a flush writes them all at once.
            let mut stdout = io::BufWriter::new(io::stdout());
            while let Ok(first) = lines.recv() {
                thread::sleep(GATHER);
                for line in std::iter::once(first).chain(lines.try_iter()) {
                    let dropped = DROPPED.swap(0, Ordering::Relaxed);
                    if dropped > 0 {
                        let _ = writeln!(stdout, "({dropped} log lines dropped)");
                    }
                    // An error means nobody reads the log: carry on without it.
                    let _ = writeln!(stdout, "{line}");
                    PENDING.fetch_sub(1, Ordering::Relaxed);
                }
                let _ = stdout.flush();
            }
        });
        queue
    });
}

/// Hands one line to the writer, without waiting: see [`log!`](crate::log!).
pub fn line(text: fmt::Arguments) {
    let Some(queue) = QUEUE.get() else {
        return;
    };
    PENDING.fetch_add(1, Ordering::Relaxed);
    if let Err(TrySendError::Full(_)) = queue.try_send(text.to_string()) {
        PENDING.fetch_sub(1, Ordering::Relaxed);
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Gives the writer up to `patience` to write what it has been handed,
/// before the program exits: the writer's thread ends with the process,
/// and what it had not written yet would be lost. If nobody reads the log,
/// the writer is stuck, and this gives up after `patience`.
pub fn finish(patience: Duration) {
    let deadline = std::time::Instant::now() + patience;
    while PENDING.load(Ordering::Relaxed) > 0 && std::time::Instant::now() < deadline {
        thread::sleep(Duration::from_millis(1));
    }
}

/// Logs one line, written like `println!`: `log!("{peer}: connected")`.
#[macro_export]
macro_rules! log {
    ($($text:tt)*) => {
        $crate::log::line(format_args!($($text)*))
    };
}
// ANCHOR_END: log

// ANCHOR: escape
/// Client text as the log shows it: control characters, quotes and
/// backslashes escaped the way Rust writes them in a string (`\u{1b}`,
/// `\r`), so that a client cannot send escape codes to the operator's
/// terminal or forge a line of the log.
pub fn escape(text: &str) -> String {
    text.escape_debug().to_string()
}
// ANCHOR_END: escape

#[cfg(test)]
mod tests {
    use super::*;

    // ANCHOR: test_escape
    #[test]
    fn client_text_cannot_reach_the_terminal_raw() {
        assert_eq!(escape("/\x1b[31mred\r\nFAKE"), "/\\u{1b}[31mred\\r\\nFAKE");
        assert_eq!(escape("/caf\u{e9}?q=\"x\""), "/caf\u{e9}?q=\\\"x\\\"");
    }
    // ANCHOR_END: test_escape
}
