//! The report the book shows (`book/src/build-it-yourself.md`), made fresh:
//! the first failure of the crate that `grade new step-03` writes, left as
//! it is. That crate holds stage 2's code, so stage 2's reference server,
//! in this process, stands in for it: it does the handshake, and then only
//! prints what it receives.

use std::time::Duration;
use ws_tests::check::{self, Server};
use ws_tests::stages::{STEP_02, STEP_03};

#[test]
fn the_first_failure_of_an_untouched_stage_3() {
    ws_tests::set_patience(Duration::from_secs(2));
    let check = STEP_03
        .checks()
        .find(|check| check.id() == "echo::echoes_a_text_message")
        .unwrap();
    let untouched = ws_tests::start_server(STEP_02.serve);
    let outcome = check::run(check, &Server::new(untouched, STEP_03.spec));
    assert!(
        !outcome.passed(),
        "stage 2's server passed a check of stage 3"
    );
    let report = grade::failure(&STEP_03, check, &outcome);
    // Where in the check it failed moves whenever the file is edited.
    let report: String = report
        .lines()
        .map(|line| match line.split_once(" (it failed at ") {
            Some((before, _)) => format!("{before}\n"),
            None => format!("{line}\n"),
        })
        .collect();
    let shown = format!("  {} ... FAIL\n\n{report}", check.id());
    insta::with_settings!({ omit_expression => true }, {
        insta::assert_snapshot!("untouched_stage_3", shown);
    });
}
