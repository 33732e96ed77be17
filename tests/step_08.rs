//! Stage 8's checks (`ws_tests::stages::STEP_08`), against the reference
//! stage, started with the values of its spec: the chat of stage 7, and
//! what it takes to leave it running (heartbeats, the join deadline, the
//! Origin check, limits on connections and messages, a graceful shutdown
//! on a fresh instance of the program each). And what only the reference
//! can show, below: its page, and its command line.

use std::process::Command;
use ws_tests::*;

ws_tests::main!(
    ws_tests::stages::STEP_08,
    ws_tests::reference_checks![
        the_page_is_stage_8s,
        help_lists_every_flag,
        an_unknown_flag_exits_with_2_and_says_which,
    ]
);

/// The page says which stage serves it.
fn the_page_is_stage_8s(server: &Server) {
    let response = exchange(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(response.contains("<title>Stage 8: a chat with names</title>"));
}

/// Every flag the program takes.
const FLAGS: &[&str] = &[
    "--ping-interval",
    "--idle-timeout",
    "--join-timeout",
    "--request-timeout",
    "--close-timeout",
    "--allow-origin",
    "--max-connections",
    "--max-connections-per-address",
    "--max-messages-per-second",
    "--help",
];

/// `--help` exits with 0 and names every flag, those the checks start it
/// with among them.
fn help_lists_every_flag(_: &Server) {
    let output = Command::new(program::binary("step-08"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    let spec_flags = stages::STEP_08.spec.flags();
    let given = spec_flags.iter().filter(|flag| flag.starts_with("--"));
    for flag in FLAGS.iter().copied().chain(given.map(String::as_str)) {
        assert!(
            help.lines()
                .any(|line| line.trim_start().split([' ', ',']).any(|word| word == flag)),
            "--help does not list {flag}:\n{help}"
        );
    }
}

/// A flag it does not know is a mistake: exit status 2, a message that
/// names it, and the usage.
fn an_unknown_flag_exits_with_2_and_says_which(_: &Server) {
    let output = Command::new(program::binary("step-08"))
        .args(["127.0.0.1:0", "--ping-intervall", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("--ping-intervall"), "{error}");
    assert!(error.contains("usage:"), "{error}");
}
