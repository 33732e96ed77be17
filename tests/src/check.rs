//! A check is a function of a server: it talks to the server over TCP, and
//! panics (an `assert!` fails) if the server does not do what the stage
//! promises. `cargo test` runs each check against the reference stage, in
//! process; the grader runs the same function against any server.
//!
//! Running a check here catches its panic, and gathers what a report of it
//! needs: the message, the exchange (the [`Trace`]), the RFC and book
//! sections the check named ([`about`]), and the transcript it kept for
//! its snapshot ([`keep`]).

use crate::trace::{self, Trace};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant};

/// What a stage promises that a check needs to know: its time limits and
/// size limits, and what its chat says. A stage that has none of a limit
/// has 0 there (stage 1 has no close timeout: it never speaks WebSocket).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// How long a client may take to send its whole request.
    pub request_timeout: Duration,
    /// How long the server waits, after its close frame, for the client.
    pub close_timeout: Duration,
    /// The largest message the server accepts, in bytes.
    pub max_message_len: usize,
    /// How far a client may fall behind before it is dropped, in bytes.
    pub max_unsent_bytes: usize,
    /// What the chat says, from stage 4 on.
    pub chat: Chat,
}

/// How the clients of a chat talk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chat {
    /// No chat: one client at a time.
    None,
    /// Stage 4: every text message goes to everyone, as it is.
    Broadcast,
    /// Stage 5 on: JSON messages; a client joins with a name first.
    Json,
}

/// The server a check talks to, and what its stage promises.
pub struct Server {
    pub address: SocketAddr,
    spec: Spec,
}

impl Server {
    pub fn new(address: SocketAddr, spec: Spec) -> Server {
        Server { address, spec }
    }

    // The limits, each read through a method that notes that the check
    // used it: the grader runs a check once for every stage that shares it
    // with the same values (see `Outcome::used`).

    pub fn request_timeout(&self) -> Duration {
        used("request_timeout", self.spec.request_timeout)
    }

    pub fn close_timeout(&self) -> Duration {
        used("close_timeout", self.spec.close_timeout)
    }

    pub fn max_message_len(&self) -> usize {
        used("max_message_len", self.spec.max_message_len)
    }

    pub fn max_unsent_bytes(&self) -> usize {
        used("max_unsent_bytes", self.spec.max_unsent_bytes)
    }

    pub fn chat(&self) -> Chat {
        used("chat", self.spec.chat)
    }
}

impl Spec {
    /// The value of the limit `name`, as [`Outcome::used`] writes it.
    pub fn value(&self, name: &str) -> String {
        match name {
            "request_timeout" => format!("{:?}", self.request_timeout),
            "close_timeout" => format!("{:?}", self.close_timeout),
            "max_message_len" => format!("{:?}", self.max_message_len),
            "max_unsent_bytes" => format!("{:?}", self.max_unsent_bytes),
            "chat" => format!("{:?}", self.chat),
            _ => String::new(),
        }
    }
}

/// One check: a function, named by its module (the suite) and its name.
#[derive(Debug, Clone, Copy)]
pub struct Check {
    pub suite: &'static str,
    pub name: &'static str,
    pub run: fn(&Server),
}

impl Check {
    /// `echo::echoes_a_text_message`, as `cargo test` and the grader name it.
    pub fn id(&self) -> String {
        format!("{}::{}", self.suite, self.name)
    }

    /// `echoes a text message`, for people.
    pub fn title(&self) -> String {
        self.name.replace('_', " ")
    }

    /// Where the check is written.
    pub fn source(&self) -> String {
        match self.suite {
            "reference" => "the stage's file in tests/".to_string(),
            suite => format!("tests/src/suites/{suite}.rs"),
        }
    }
}

/// A list of checks: `checks![echo::echoes_a_text_message, ...]`, each a
/// function of a module of [`crate::suites`].
#[macro_export]
macro_rules! checks {
    ($($suite:ident :: $name:ident),* $(,)?) => {
        &[$($crate::Check {
            suite: stringify!($suite),
            name: stringify!($name),
            run: $crate::suites::$suite::$name,
        }),*]
    };
}

/// Checks of the reference stage alone, written beside its test file
/// (`tests/step_03.rs`): `reference_checks![a_quiet_client_makes_the_next_one_wait]`.
#[macro_export]
macro_rules! reference_checks {
    ($($name:ident),* $(,)?) => {
        &[$($crate::Check {
            suite: "reference",
            name: stringify!($name),
            run: $name,
        }),*]
    };
}

/// A section of the RFC or of the book that explains what a check checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct About {
    /// `RFC 6455, section 5.2`.
    pub rfc: &'static str,
    /// `ch03-frames.md#three-sizes-of-length`, in `book/src`.
    pub book: &'static str,
}

/// Names the RFC section and the book section (a chapter of `book/src` and
/// a heading's anchor) that explain the part of the check that follows: a
/// failure after this call points the reader there.
pub fn about(rfc: &'static str, book: &'static str) {
    STATE.with(|state| state.borrow_mut().about = Some(About { rfc, book }));
}

/// Keeps `text` as what this check shows: `cargo test` holds the reference
/// stage to it with a snapshot (`tests/snapshots/<suite>__<check>.snap`),
/// which the book includes. The grader does not compare it: what a check
/// asserts is what every server must do; the snapshot is how the reference
/// does it, byte for byte.
pub fn keep(text: impl Into<String>) {
    STATE.with(|state| state.borrow_mut().kept = Some(text.into()));
}

fn used<T: std::fmt::Debug>(name: &'static str, value: T) -> T {
    STATE.with(|state| {
        let mut state = state.borrow_mut();
        if !state.used.iter().any(|(found, _)| *found == name) {
            state.used.push((name, format!("{value:?}")));
        }
    });
    value
}

/// What a check left behind on its thread while it ran.
#[derive(Default)]
struct State {
    about: Option<About>,
    kept: Option<String>,
    used: Vec<(&'static str, String)>,
    capturing: bool,
    panic: Option<(String, Option<String>)>,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State::default());
}

/// How a check went.
pub struct Outcome {
    /// `None` if it passed; else the message of the failed assertion, and
    /// where in the source it failed.
    pub failure: Option<Failure>,
    pub about: Option<About>,
    pub kept: Option<String>,
    /// The limits of the stage the check used, with their values: another
    /// stage with the same values gets the same verdict.
    pub used: Vec<(&'static str, String)>,
    pub trace: Arc<Trace>,
    pub took: Duration,
}

#[derive(Debug, Clone)]
pub struct Failure {
    pub message: String,
    /// `tests/src/suites/echo.rs:41:5`.
    pub location: Option<String>,
}

impl Outcome {
    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }
}

/// Runs one check against `server`, catching its failure.
pub fn run(check: &Check, server: &Server) -> Outcome {
    install_panic_hook();
    STATE.with(|state| {
        *state.borrow_mut() = State {
            capturing: true,
            ..State::default()
        }
    });
    crate::client::reset_masks();
    let trace = Trace::new();
    let started = Instant::now();
    let result = trace::recording(&trace, || {
        panic::catch_unwind(AssertUnwindSafe(|| (check.run)(server)))
    });
    let took = started.elapsed();
    let state = STATE.with(|state| std::mem::take(&mut *state.borrow_mut()));
    let failure = result.err().map(|payload| {
        let (message, location) = state
            .panic
            .clone()
            .unwrap_or_else(|| (panic_message(&payload), None));
        Failure { message, location }
    });
    Outcome {
        failure,
        about: state.about,
        kept: state.kept,
        used: state.used,
        trace,
        took,
    }
}

/// Runs `f`, catching a panic as a [`Failure`] (for what a harness does
/// around a check, such as comparing its snapshot).
pub fn catch(f: impl FnOnce()) -> Option<Failure> {
    install_panic_hook();
    STATE.with(|state| state.borrow_mut().capturing = true);
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    let captured = STATE.with(|state| {
        let mut state = state.borrow_mut();
        state.capturing = false;
        state.panic.take()
    });
    result.err().map(|payload| {
        let (message, location) = captured.unwrap_or_else(|| (panic_message(&payload), None));
        Failure { message, location }
    })
}

fn panic_message(payload: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        text.to_string()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "the check panicked".to_string()
    }
}

/// A panic on a thread that runs a check is that check's failure: keep its
/// message for the report, instead of printing it as it happens. Panics
/// anywhere else print as they always do.
fn install_panic_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let default = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let captured = STATE.with(|state| {
                let Ok(mut state) = state.try_borrow_mut() else {
                    return false;
                };
                if !state.capturing {
                    return false;
                }
                let message = if let Some(text) = info.payload().downcast_ref::<&str>() {
                    text.to_string()
                } else if let Some(text) = info.payload().downcast_ref::<String>() {
                    text.clone()
                } else {
                    "the check panicked".to_string()
                };
                let location = info.location().map(|location| location.to_string());
                state.panic.get_or_insert((message, location));
                true
            });
            if !captured {
                default(info);
            }
        }));
    });
}
