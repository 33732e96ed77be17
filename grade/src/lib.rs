//! The grader's parts that its tests use too: the report of a failed check
//! ([`failure`]), writing a crate of your own from a stage
//! ([`standalone`]), and starting and stopping a server command
//! ([`process`]).

pub mod process;
pub mod standalone;

use ws_tests::check::{self, Check, Outcome, Server};
use ws_tests::report;
use ws_tests::stages::Stage;

/// What the grader prints when `check` of `stage` failed with `outcome`:
/// the check's message, the exchange it failed on, and what the reference
/// stage answers to the same exchange (it runs the check against the
/// reference, in this process).
pub fn failure(stage: &Stage, check: &Check, outcome: &Outcome) -> String {
    let address = ws_tests::start_server(stage.serve);
    let reference = check::run(check, &Server::new(address, stage.spec));
    let name = format!("the reference stage {}", stage.number());
    // A check that starts a server of its own does not run here.
    let reference = reference
        .skipped
        .is_none()
        .then_some((name.as_str(), &reference));
    report::failure(check, outcome, reference)
}
