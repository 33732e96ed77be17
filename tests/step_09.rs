//! Stage 9's checks (`ws_tests::stages::STEP_09`): without `--redis`, stage
//! 9 is stage 8 exactly, and passes all of stage 8's checks, started with
//! the same values. Its chat over several servers needs a redis-server:
//! `tests/redis.rs` (`cargo test -p ws-tests --test redis -- --ignored`).
//! And what only the reference can show, below: its page, and its command
//! line.

use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_09,
    ws_tests::reference_checks![
        the_page_is_stage_9s,
        help_lists_every_flag,
        an_unknown_flag_exits_with_2_and_says_which,
        a_flood_over_the_limit_leaves_room_for_others,
    ]
);

/// The page says which stage serves it.
fn the_page_is_stage_9s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 9: a chat with names</title>"));
}

fn help_lists_every_flag(_: &Server) {
    program::help_lists_every_flag(&stages::STEP_09, &["--redis"]);
}

fn an_unknown_flag_exits_with_2_and_says_which(_: &Server) {
    program::an_unknown_flag_exits_with_2_and_says_which("step-09");
}

fn a_flood_over_the_limit_leaves_room_for_others(_: &Server) {
    suites::limits::a_flood_over_the_limit_leaves_room_for_others("step-09");
}
