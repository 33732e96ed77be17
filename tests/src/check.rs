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
/// has 0 there (stage 1 has no close timeout: it never speaks WebSocket);
/// the stages before 8 take what stage 8 adds from [`Spec::NONE`].
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
    /// Stage 8: how long a WebSocket may send nothing before it is pinged.
    pub ping_interval: Duration,
    /// Stage 8: how long after the ping it may still send nothing.
    pub idle_timeout: Duration,
    /// Stage 8: how long a WebSocket may stay without joining the chat.
    pub join_timeout: Duration,
    /// Stage 8: an origin, besides the server's own, whose pages may
    /// connect (`""`: none).
    pub allowed_origin: &'static str,
    /// Stage 8: the most connections the server holds at once.
    pub max_connections: usize,
    /// Stage 8: the most connections it holds from one address.
    pub max_connections_per_address: usize,
    /// Stage 8: the chat messages a client may send a second, and at once.
    pub max_messages_per_second: usize,
}

impl Spec {
    /// No limit of any kind: the base of every stage's spec, which names
    /// the limits it has (`Spec { request_timeout: ..., ..Spec::NONE }`).
    pub const NONE: Spec = Spec {
        request_timeout: Duration::ZERO,
        close_timeout: Duration::ZERO,
        max_message_len: 0,
        max_unsent_bytes: 0,
        chat: Chat::None,
        ping_interval: Duration::ZERO,
        idle_timeout: Duration::ZERO,
        join_timeout: Duration::ZERO,
        allowed_origin: "",
        max_connections: 0,
        max_connections_per_address: 0,
        max_messages_per_second: 0,
    };

    /// The command-line flags that start a stage's program with these
    /// values (stage 8's `--ping-interval 1 ...`); none for a stage whose
    /// program takes no flags.
    pub fn flags(&self) -> Vec<String> {
        if self.ping_interval.is_zero() {
            return Vec::new();
        }
        let seconds = |duration: Duration| duration.as_secs_f64().to_string();
        let mut flags = vec![
            ("--ping-interval", seconds(self.ping_interval)),
            ("--idle-timeout", seconds(self.idle_timeout)),
            ("--join-timeout", seconds(self.join_timeout)),
            ("--request-timeout", seconds(self.request_timeout)),
            ("--close-timeout", seconds(self.close_timeout)),
            ("--max-connections", self.max_connections.to_string()),
            (
                "--max-connections-per-address",
                self.max_connections_per_address.to_string(),
            ),
            (
                "--max-messages-per-second",
                self.max_messages_per_second.to_string(),
            ),
        ];
        if !self.allowed_origin.is_empty() {
            flags.push(("--allow-origin", self.allowed_origin.to_string()));
        }
        flags
            .into_iter()
            .flat_map(|(flag, value)| [flag.to_string(), value])
            .collect()
    }
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
    /// Whether the server pings quiet clients: the test client then
    /// answers its pings by itself (see [`crate::client::answering_pings`]).
    pings: bool,
    /// How to start a fresh instance of the program, for the checks that
    /// stop one with a signal; `None` for a server already running.
    launcher: Option<Launcher>,
}

/// Starts a fresh instance of the program under test, on a port of its
/// own, with the flags of the stage; or says why it could not.
pub type Launcher = Arc<dyn Fn() -> Result<Box<dyn Instance>, String> + Send + Sync>;

/// A signal that asks a program to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C on a terminal.
    Int,
    /// What `kill`, systemd and Docker send.
    Term,
}

impl Signal {
    /// `SIGTERM`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Int => "SIGINT",
            Signal::Term => "SIGTERM",
        }
    }

    /// Its number: the same on Linux, macOS and the BSDs.
    pub fn number(self) -> i32 {
        match self {
            Signal::Int => 2,
            Signal::Term => 15,
        }
    }
}

/// A running instance of the program under test, started by a
/// [`Launcher`]. Dropping it kills what is left of it.
pub trait Instance: Send {
    /// Where it accepts connections.
    fn address(&self) -> SocketAddr;
    /// Sends it `signal`.
    fn signal(&mut self, signal: Signal);
    /// Waits up to `timeout` for it to exit; its exit code (`-1` for a
    /// death by a signal), or `None` if it is still running.
    fn wait(&mut self, timeout: Duration) -> Option<i32>;
}

impl Server {
    pub fn new(address: SocketAddr, spec: Spec) -> Server {
        Server {
            address,
            spec,
            pings: !spec.ping_interval.is_zero(),
            launcher: None,
        }
    }

    /// The same server, which can also start fresh instances of its
    /// program (see [`Server::launch`]).
    pub fn with_launcher(mut self, launcher: Launcher) -> Server {
        self.launcher = Some(launcher);
        self
    }

    /// The same server, known to ping quiet clients (or not) whatever its
    /// stage promises: `grade all` grades every stage against a program
    /// started with the flags of the last.
    pub fn pinging(mut self, pings: bool) -> Server {
        self.pings = pings;
        self
    }

    /// Whether the test client answers the server's pings by itself.
    pub fn pings(&self) -> bool {
        self.pings
    }

    /// Starts a fresh instance of the program, or, for a server that was
    /// already running when the checks began, skips the check (see
    /// [`skip`]): it cannot be started again, nor sent a signal.
    #[track_caller]
    pub fn launch(&self) -> Box<dyn Instance> {
        let Some(launcher) = &self.launcher else {
            skip(
                "it starts the server itself, to send it a signal, which a server already \
                 running (--address) does not allow: grade with `-- COMMAND` to run it",
            );
        };
        match launcher() {
            Ok(instance) => instance,
            Err(error) => panic!("could not start a fresh instance of the server: {error}"),
        }
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

    pub fn ping_interval(&self) -> Duration {
        used("ping_interval", self.spec.ping_interval)
    }

    pub fn idle_timeout(&self) -> Duration {
        used("idle_timeout", self.spec.idle_timeout)
    }

    pub fn join_timeout(&self) -> Duration {
        used("join_timeout", self.spec.join_timeout)
    }

    pub fn allowed_origin(&self) -> &'static str {
        used("allowed_origin", self.spec.allowed_origin)
    }

    pub fn max_connections(&self) -> usize {
        used("max_connections", self.spec.max_connections)
    }

    pub fn max_connections_per_address(&self) -> usize {
        used(
            "max_connections_per_address",
            self.spec.max_connections_per_address,
        )
    }

    pub fn max_messages_per_second(&self) -> usize {
        used("max_messages_per_second", self.spec.max_messages_per_second)
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
            "ping_interval" => format!("{:?}", self.ping_interval),
            "idle_timeout" => format!("{:?}", self.idle_timeout),
            "join_timeout" => format!("{:?}", self.join_timeout),
            "allowed_origin" => format!("{:?}", self.allowed_origin),
            "max_connections" => format!("{:?}", self.max_connections),
            "max_connections_per_address" => format!("{:?}", self.max_connections_per_address),
            "max_messages_per_second" => format!("{:?}", self.max_messages_per_second),
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

/// Ends the check without a verdict, saying why it cannot run here (a
/// server already running cannot be sent a signal; this machine has no
/// 127.0.0.2). The runners say so, and count it apart.
#[track_caller]
pub fn skip(why: impl Into<String>) -> ! {
    STATE.with(|state| state.borrow_mut().skipped = Some(why.into()));
    panic::resume_unwind(Box::new(Skipped));
}

/// The panic of [`skip`].
struct Skipped;

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
    skipped: Option<String>,
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
    /// Why the check did not run, if it did not (see [`skip`]): it passed
    /// nothing and failed nothing.
    pub skipped: Option<String>,
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
        crate::client::answering_pings(server.pings, || {
            panic::catch_unwind(AssertUnwindSafe(|| (check.run)(server)))
        })
    });
    let took = started.elapsed();
    let state = STATE.with(|state| std::mem::take(&mut *state.borrow_mut()));
    let result = match result {
        Err(payload) if payload.is::<Skipped>() => Ok(()),
        result => result,
    };
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
        skipped: state.skipped,
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
