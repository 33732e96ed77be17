//! The checks of every stage, and what runs them.
//!
//! A check is a function of a server's address (see [`check`]): it talks
//! to the server over real TCP, with a client written from the RFCs (see
//! [`client`]), and fails if the server does not do what the stage
//! promises. The checks live in [`suites`], one module per subject, and
//! [`stages`] lists each stage's checks in the order a learner meets them.
//! Two runners take those lists:
//!
//! - `cargo test`: each stage's test file (`tests/step_03.rs`) runs its
//!   stage's checks against the reference stage, in process (see
//!   [`harness`]);
//! - the grader (`cargo run -p grade -- step-03 -- COMMAND`) runs them
//!   against any server, in any language, and reports the first failure
//!   (see [`report`]).
//!
//! `tests/README.md` has the table of which suite runs against which stage.

pub mod check;
pub mod client;
pub mod harness;
pub mod json;
pub mod program;
pub mod redis;
pub mod report;
pub mod stages;
pub mod suites;
pub mod trace;

pub use check::{Chat, Check, Server, Spec, about, keep};
pub use client::*;
pub use program::Program;

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread;

/// Starts a stage's `serve` function on an ephemeral port of 127.0.0.1 and
/// returns the address it listens on.
///
/// The server runs on a background thread of the test process and stops when
/// the process exits; each check gets a server of its own, so checks can run
/// in parallel without sharing state or depending on port 8080 being free.
pub fn start_server(serve: fn(TcpListener) -> io::Result<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let address = listener.local_addr().expect("local address");
    thread::spawn(move || serve(listener));
    address
}

/// The `main` of a stage's test file: runs the stage's checks, and the
/// reference stage's own, against the reference stage, comparing what each
/// check keeps with its snapshot in `tests/snapshots/`.
///
/// ```ignore
/// ws_tests::main!(ws_tests::stages::STEP_03, ws_tests::reference_checks![...]);
/// ```
#[macro_export]
macro_rules! main {
    ($stage:expr, $reference:expr) => {
        fn main() -> std::process::ExitCode {
            fn snapshot(name: &str, text: &str) {
                ::insta::with_settings!({
                    snapshot_path => "snapshots",
                    prepend_module_to_snapshot => false,
                    omit_expression => true,
                }, {
                    ::insta::assert_snapshot!(name.to_string(), text);
                });
            }
            $crate::harness::run(&$stage, $reference, snapshot)
        }
    };
}
