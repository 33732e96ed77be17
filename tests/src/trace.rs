//! What a check sent and received, connection by connection, so that a
//! failure can show the exchange it failed on: the bytes in hex, and what
//! they mean (the lines of an HTTP head, the frames of a WebSocket).
//!
//! Every [`Conn`](crate::Conn) records into the trace of the check that
//! opened it ([`current`]). Consecutive writes on one connection make one
//! event, and so do consecutive reads, up to the end of a unit of input (a
//! frame, an HTTP head) that the reading helper marks.

use crate::client::opcode_name;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt::Write as _;
use std::io;
use std::net::Shutdown;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The most events a trace keeps: the last ones, which a failure shows.
const MAX_EVENTS: usize = 400;

/// The most bytes an event keeps (its length counts them all).
const MAX_BYTES: usize = 4096;

/// One thing that happened on a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Opened {
        conn: usize,
    },
    /// The client sent `len` bytes, of which `bytes` are the first.
    Sent {
        conn: usize,
        bytes: Vec<u8>,
        len: usize,
    },
    /// The client received `len` bytes; `whole` once a reading helper has
    /// read a whole unit (a frame, an HTTP head).
    Received {
        conn: usize,
        bytes: Vec<u8>,
        len: usize,
        whole: bool,
    },
    /// A read found the end of the stream: the server closed its side.
    Ended {
        conn: usize,
    },
    /// A read found the connection reset.
    Reset {
        conn: usize,
    },
    /// A read waited for `waited` and nothing came.
    Waited {
        conn: usize,
        waited: Option<Duration>,
    },
    /// A read failed otherwise.
    Failed {
        conn: usize,
        error: String,
    },
    /// The client closed its side (`Write`) or both (`Both`).
    Shut {
        conn: usize,
        both: bool,
    },
}

impl Event {
    pub fn conn(&self) -> usize {
        match *self {
            Event::Opened { conn }
            | Event::Sent { conn, .. }
            | Event::Received { conn, .. }
            | Event::Ended { conn }
            | Event::Reset { conn }
            | Event::Waited { conn, .. }
            | Event::Failed { conn, .. }
            | Event::Shut { conn, .. } => conn,
        }
    }

    /// Whether this is how a read ended without bytes: an end of stream, a
    /// reset, a wait in vain, an error.
    fn is_read_end(&self) -> bool {
        matches!(
            self,
            Event::Ended { .. } | Event::Reset { .. } | Event::Waited { .. } | Event::Failed { .. }
        )
    }
}

/// The events of one check, in order.
#[derive(Default)]
pub struct Trace {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    events: VecDeque<Event>,
    dropped: usize,
    connections: usize,
}

impl Trace {
    pub fn new() -> Arc<Trace> {
        Arc::new(Trace::default())
    }

    fn with<R>(&self, f: impl FnOnce(&mut Inner) -> R) -> R {
        let mut inner = self
            .inner
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        f(&mut inner)
    }

    /// A new connection: returns its number, from 1.
    pub fn opened(&self) -> usize {
        self.with(|inner| {
            inner.connections += 1;
            let conn = inner.connections;
            inner.push(Event::Opened { conn });
            conn
        })
    }

    pub fn sent(&self, conn: usize, bytes: &[u8]) {
        if bytes.is_empty() {
            return;
        }
        self.with(|inner| {
            if let Some(Event::Sent {
                conn: last,
                bytes: kept,
                len,
            }) = inner.events.back_mut()
                && *last == conn
            {
                keep_bytes(kept, bytes);
                *len += bytes.len();
                return;
            }
            let mut kept = Vec::new();
            keep_bytes(&mut kept, bytes);
            inner.push(Event::Sent {
                conn,
                bytes: kept,
                len: bytes.len(),
            });
        });
    }

    pub fn received(
        &self,
        conn: usize,
        result: &io::Result<usize>,
        buffer: &[u8],
        waited: Option<Duration>,
    ) {
        let event = match result {
            Ok(0) => Event::Ended { conn },
            Ok(count) => {
                let bytes = &buffer[..*count];
                return self.with(|inner| {
                    if let Some(Event::Received {
                        conn: last,
                        bytes: kept,
                        len,
                        whole: false,
                    }) = inner.events.back_mut()
                        && *last == conn
                    {
                        keep_bytes(kept, bytes);
                        *len += bytes.len();
                        return;
                    }
                    let mut kept = Vec::new();
                    keep_bytes(&mut kept, bytes);
                    inner.push(Event::Received {
                        conn,
                        bytes: kept,
                        len: bytes.len(),
                        whole: false,
                    });
                });
            }
            Err(error) => match error.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
                    Event::Waited { conn, waited }
                }
                io::ErrorKind::ConnectionReset => Event::Reset { conn },
                io::ErrorKind::Interrupted => return,
                _ => Event::Failed {
                    conn,
                    error: error.to_string(),
                },
            },
        };
        self.with(|inner| inner.push(event));
    }

    /// The reads of `conn` since its last unit make a whole one.
    pub fn end_of_unit(&self, conn: usize) {
        self.with(|inner| {
            if let Some(Event::Received { whole, .. }) = inner
                .events
                .iter_mut()
                .rev()
                .find(|event| event.conn() == conn)
            {
                *whole = true;
            }
        });
    }

    pub fn shut(&self, conn: usize, how: Shutdown) {
        let both = how == Shutdown::Both;
        self.with(|inner| inner.push(Event::Shut { conn, both }));
    }

    /// The events so far, and how many older ones were dropped.
    pub fn events(&self) -> (Vec<Event>, usize) {
        self.with(|inner| (inner.events.iter().cloned().collect(), inner.dropped))
    }
}

impl Inner {
    fn push(&mut self, event: Event) {
        if self.events.len() == MAX_EVENTS {
            self.events.pop_front();
            self.dropped += 1;
        }
        self.events.push_back(event);
    }
}

fn keep_bytes(kept: &mut Vec<u8>, more: &[u8]) {
    let room = MAX_BYTES.saturating_sub(kept.len());
    kept.extend_from_slice(&more[..room.min(more.len())]);
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Trace>>> = const { RefCell::new(None) };
}

/// The trace that connections opened on this thread record into, if any.
pub fn current() -> Option<Arc<Trace>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// Runs `f` with `trace` as this thread's [`current`] trace.
pub fn recording<R>(trace: &Arc<Trace>, f: impl FnOnce() -> R) -> R {
    let before = CURRENT.with(|current| current.replace(Some(trace.clone())));
    struct Restore(Option<Arc<Trace>>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let before = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = before);
        }
    }
    let _restore = Restore(before);
    f()
}

// ---------------------------------------------------------------------------
// Finding the exchange a check failed on
// ---------------------------------------------------------------------------

/// One answer from the server on one connection: the bytes of one read (a
/// frame, say), or how a read ended (the end of the stream, a wait in
/// vain), or both, as when a frame is cut short.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Its events, in order.
    pub events: Vec<Event>,
    /// What the client sent on this connection since the answer before.
    pub provoked_by: Vec<Event>,
}

/// The answers on connection `conn`, in order.
pub fn answers(events: &[Event], conn: usize) -> Vec<Answer> {
    let mut answers: Vec<Answer> = Vec::new();
    let mut sent = Vec::new();
    // Whether the last answer may still take a read's end: it is a read
    // that was not whole, and nothing came between.
    let mut open = false;
    for event in events.iter().filter(|event| event.conn() == conn) {
        match event {
            Event::Received { whole, .. } => {
                answers.push(Answer {
                    events: vec![event.clone()],
                    provoked_by: std::mem::take(&mut sent),
                });
                open = !whole;
            }
            _ if event.is_read_end() => {
                match answers.last_mut() {
                    Some(answer) if open => answer.events.push(event.clone()),
                    _ => answers.push(Answer {
                        events: vec![event.clone()],
                        provoked_by: std::mem::take(&mut sent),
                    }),
                }
                open = false;
            }
            Event::Sent { .. } | Event::Shut { .. } => {
                sent.push(event.clone());
                open = false;
            }
            _ => open = false,
        }
    }
    answers
}

/// Where a failure happened: the connection the last read was on, and
/// which of its answers that read was (from 0).
pub fn failure_point(events: &[Event]) -> Option<(usize, usize)> {
    let conn = events
        .iter()
        .rev()
        .find(|event| matches!(event, Event::Received { .. }) || event.is_read_end())?
        .conn();
    let count = answers(events, conn).len();
    Some((conn, count.checked_sub(1)?))
}

/// The last thing sent on any connection before the end of `events`, for an
/// answer that no send on its own connection provoked (a broadcast).
pub fn last_sent(events: &[Event]) -> Option<Event> {
    events
        .iter()
        .rev()
        .find(|event| matches!(event, Event::Sent { .. }))
        .cloned()
}

// ---------------------------------------------------------------------------
// Showing bytes to a person
// ---------------------------------------------------------------------------

/// `2 s`, `300 ms`.
pub fn seconds(duration: Duration) -> String {
    if duration.as_millis().is_multiple_of(1000) {
        format!("{} s", duration.as_secs())
    } else if duration < Duration::from_secs(1) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} s", duration.as_secs_f64())
    }
}

/// The lines that show one event, each starting with `indent`.
pub fn show_event(event: &Event, indent: &str) -> String {
    let mut out = String::new();
    match event {
        Event::Opened { conn } => {
            let _ = writeln!(out, "{indent}(connection {conn} opens)");
        }
        Event::Sent { bytes, len, .. } => {
            out.push_str(&show_bytes(bytes, *len, indent));
        }
        Event::Received { bytes, len, .. } => {
            out.push_str(&show_bytes(bytes, *len, indent));
        }
        Event::Ended { .. } => {
            let _ = writeln!(
                out,
                "{indent}the end of the stream: the server closed the connection"
            );
        }
        Event::Reset { .. } => {
            let _ = writeln!(out, "{indent}a reset: the server dropped the connection");
        }
        Event::Waited { waited, .. } => match waited {
            Some(waited) => {
                let _ = writeln!(out, "{indent}nothing came within {}", seconds(*waited));
            }
            None => {
                let _ = writeln!(out, "{indent}nothing");
            }
        },
        Event::Failed { error, .. } => {
            let _ = writeln!(out, "{indent}a failed read: {error}");
        }
        Event::Shut { both, .. } => {
            let what = if *both {
                "(the grader closes the connection)"
            } else {
                "(the grader closes its side: no more requests)"
            };
            let _ = writeln!(out, "{indent}{what}");
        }
    }
    out
}

/// Bytes in hex, then what they say: the lines of an HTTP message, or the
/// frames of a WebSocket (masked or not).
pub fn show_bytes(bytes: &[u8], len: usize, indent: &str) -> String {
    let mut out = String::new();
    let shown = &bytes[..bytes.len().min(48)];
    for row in shown.chunks(16) {
        let hex: Vec<String> = row.iter().map(|byte| format!("{byte:02x}")).collect();
        let _ = writeln!(out, "{indent}{}", hex.join(" "));
    }
    if len > shown.len() {
        let _ = writeln!(out, "{indent}... ({len} bytes in all)");
    } else {
        let _ = writeln!(out, "{indent}({len} bytes)");
    }
    let (text_part, rest) = http_part(bytes);
    if !text_part.is_empty() {
        for line in text_lines(text_part, 14) {
            let _ = writeln!(out, "{indent}| {line}");
        }
    }
    if !rest.is_empty() {
        for line in frame_lines(rest, len - text_part.len() > rest.len()) {
            let _ = writeln!(out, "{indent}= {line}");
        }
    }
    out
}

/// The part of `bytes` that is an HTTP message's head (and body, if it is
/// text), and the rest.
fn http_part(bytes: &[u8]) -> (&[u8], &[u8]) {
    let looks_like_http = bytes.first().is_some_and(u8::is_ascii_uppercase)
        && bytes
            .iter()
            .take(200)
            .position(|byte| *byte == b'\n')
            .is_some_and(|end| bytes[..end].windows(5).any(|w| w == b"HTTP/"));
    if !looks_like_http {
        return (&[], bytes);
    }
    let head_end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(bytes.len(), |at| at + 4);
    // A body of text goes with the head; frames after a head do not.
    let after = &bytes[head_end..];
    let text_body = after
        .iter()
        .all(|byte| !byte.is_ascii_control() || b"\r\n\t".contains(byte));
    if text_body {
        (bytes, &[])
    } else {
        bytes.split_at(head_end)
    }
}

/// Text, one line per line (at most `max`), with `\r\n` and other control
/// characters shown as escapes.
fn text_lines(bytes: &[u8], max: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(bytes);
    let mut lines: Vec<String> = text
        .split_inclusive('\n')
        .map(|line| {
            let escaped = line.escape_debug().to_string();
            if escaped.chars().count() > 100 {
                let start: String = escaped.chars().take(100).collect();
                format!("{start}...")
            } else {
                escaped
            }
        })
        .collect();
    if lines.len() > max {
        let more = lines.len() - max;
        lines.truncate(max);
        lines.push(format!("... ({more} more lines)"));
    }
    lines
}

/// The frames in `bytes`, one line each; the last may be cut short.
fn frame_lines(bytes: &[u8], truncated: bool) -> Vec<String> {
    let mut lines = Vec::new();
    let mut at = 0;
    while at < bytes.len() && lines.len() < 6 {
        let rest = &bytes[at..];
        match parse_frame(rest) {
            Some((line, used)) => {
                lines.push(line);
                at += used;
            }
            None => {
                let what = if truncated {
                    "a frame, longer than what is shown"
                } else {
                    "part of a frame: the rest has not come"
                };
                lines.push(describe_partial(rest, what));
                return lines;
            }
        }
    }
    if at < bytes.len() {
        lines.push("... (more frames)".to_string());
    }
    lines
}

/// One frame at the start of `bytes`, described; `None` if incomplete.
fn parse_frame(bytes: &[u8]) -> Option<(String, usize)> {
    let [first, second, ..] = *bytes else {
        return None;
    };
    let (len, mut at) = match second & 0x7f {
        126 => (
            u16::from_be_bytes(bytes.get(2..4)?.try_into().ok()?) as u64,
            4,
        ),
        127 => (u64::from_be_bytes(bytes.get(2..10)?.try_into().ok()?), 10),
        len => (u64::from(len), 2),
    };
    let mask = if second & 0x80 != 0 {
        let key: [u8; 4] = bytes.get(at..at + 4)?.try_into().ok()?;
        at += 4;
        Some(key)
    } else {
        None
    };
    let end = at.checked_add(usize::try_from(len).ok()?)?;
    let mut payload = bytes.get(at..end)?.to_vec();
    if let Some(key) = mask {
        for (i, byte) in payload.iter_mut().enumerate() {
            *byte ^= key[i % 4];
        }
    }
    let frame = crate::Frame {
        fin: first & 0x80 != 0,
        opcode: first & 0x0f,
        payload,
    };
    let mut flags = Vec::new();
    if first & 0x70 != 0 {
        flags.push(format!("RSV bits {:03b}", (first >> 4) & 0b111));
    }
    flags.push(
        if mask.is_some() {
            "masked"
        } else {
            "not masked"
        }
        .to_string(),
    );
    flags.push(
        match second & 0x7f {
            126 => "16-bit length",
            127 => "64-bit length",
            _ => "7-bit length",
        }
        .to_string(),
    );
    Some((
        format!("a frame: {frame:?} ({}, {len} bytes)", flags.join(", ")),
        end,
    ))
}

fn describe_partial(bytes: &[u8], what: &str) -> String {
    match *bytes {
        [first, second, ..] => format!(
            "{what} ({}, {}first length byte {})",
            opcode_name(first & 0x0f),
            if second & 0x80 != 0 { "masked, " } else { "" },
            second & 0x7f
        ),
        _ => format!("{what} ({} byte)", bytes.len()),
    }
}
