//! Stage 8's checks (`ws_tests::stages::STEP_08`), against the reference
//! stage, started with the values of its spec: the chat of stage 7, and
//! what it takes to leave it running (heartbeats, the join deadline, the
//! Origin check, limits on connections and messages, a graceful shutdown
//! on a fresh instance of the program each). And what only the reference
//! can show, below: its page, and its command line.

use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_08,
    ws_tests::reference_checks![
        the_page_is_stage_8s,
        help_lists_every_flag,
        an_unknown_flag_exits_with_2_and_says_which,
        a_flood_over_the_limit_leaves_room_for_others,
    ]
);

/// The page says which stage serves it.
fn the_page_is_stage_8s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 8: a chat with names</title>"));
}

fn help_lists_every_flag(_: &Server) {
    program::help_lists_every_flag(&stages::STEP_08, &[]);
}

fn an_unknown_flag_exits_with_2_and_says_which(_: &Server) {
    program::an_unknown_flag_exits_with_2_and_says_which("step-08");
}

fn a_flood_over_the_limit_leaves_room_for_others(_: &Server) {
    suites::limits::a_flood_over_the_limit_leaves_room_for_others("step-08");
}
