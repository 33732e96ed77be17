//! The grader, tested on broken servers: each reference stage with one of
//! the book's classic mistakes put back in, made at test time, and failed
//! by the grader at the check that names the mistake, every check before
//! it passing.
//!
//! A mutant is a copy of a stage (made as `grade new` makes its crates,
//! outside the workspace, under `target/grade-mutants/`) with one textual
//! change, which must match exactly once: if a stage is rewritten so that
//! the change no longer applies, the test fails instead of grading an
//! unbroken server. Each builds a crate, so they are slow:
//! `cargo test -p grade --test mutants -- --ignored` (CI runs them).

use std::path::PathBuf;
use std::process::Command;
use ws_tests::stages::{STEP_02, STEP_03, STEP_04, STEP_05, Stage};

/// One classic mistake.
struct Mutant {
    name: &'static str,
    stage: &'static Stage,
    /// The file of the stage it changes, and how.
    file: &'static str,
    from: &'static str,
    to: &'static str,
    /// The check that must fail first, and words its report must hold.
    fails_at: &'static str,
    says: &'static str,
}

/// Where the grader's tests build: `target/grade-mutants`, beside the
/// workspace's own builds (the tests run from `target/debug/deps`).
fn work_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let target = exe.ancestors().nth(3).unwrap().to_path_buf();
    target.join("grade-mutants")
}

/// Copies the stage, makes the change, builds it; returns the binary.
fn build(mutant: &Mutant) -> PathBuf {
    let work = work_dir();
    let dir = work.join(mutant.name);
    let _ = std::fs::remove_dir_all(&dir);
    let package = format!("mutant-{}", mutant.name.replace('_', "-"));
    let description = format!("{} with a mistake: {}", mutant.stage.package, mutant.name);
    grade::standalone::copy_stage(mutant.stage, &dir, &package, &description).unwrap();
    let path = dir.join(mutant.file);
    let code = std::fs::read_to_string(&path).unwrap();
    let matches = code.matches(mutant.from).count();
    assert_eq!(
        matches, 1,
        "the change of mutant {} must match {} exactly once, and matches {matches} times: \
         has the stage changed? Update the mutant.",
        mutant.name, mutant.file
    );
    std::fs::write(&path, code.replace(mutant.from, mutant.to)).unwrap();
    let cargo = std::env::var("CARGO").unwrap_or("cargo".to_string());
    let status = Command::new(cargo)
        .args(["build", "--quiet", "--manifest-path"])
        .arg(dir.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(work.join("target"))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "the mutant {} does not build",
        mutant.name
    );
    work.join("target/debug").join(package)
}

/// Builds the mutant and grades it: the grader must fail, at `fails_at`.
fn grade(mutant: Mutant) {
    let binary = build(&mutant);
    let output = Command::new(env!("CARGO_BIN_EXE_grade"))
        .arg(mutant.stage.package)
        .arg("--")
        .arg(&binary)
        .arg("{address}")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    assert_eq!(
        output.status.code(),
        Some(1),
        "the grader must fail the mutant"
    );
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|line| line.contains(" ... FAIL"))
        .collect();
    assert_eq!(failed.len(), 1, "the grader stops at the first failure");
    assert!(
        failed[0].starts_with(&format!("  {} ... FAIL", mutant.fails_at)),
        "mutant {} should fail at {}, and fails at: {}",
        mutant.name,
        mutant.fails_at,
        failed[0]
    );
    assert!(
        stdout.contains(mutant.says),
        "the report of mutant {} should say {:?}",
        mutant.name,
        mutant.says
    );
    assert!(
        stdout.contains("Read about it: ") && stdout.contains("book/src/ch0"),
        "the report points to the RFC and the book"
    );
}

/// The classic bug in the frame writer: the length as one byte, right up
/// to 125 bytes, wrong from 126 on.
#[test]
#[ignore = "builds a mutant of a stage: slow"]
fn a_length_written_as_len_as_u8() {
    grade(Mutant {
        name: "len_as_u8",
        stage: &STEP_03,
        file: "src/ws.rs",
        from: "    if len <= 125 {\n",
        to: "    if true {\n",
        fails_at: "echo::messages_of_126_to_65535_bytes_have_a_16_bit_length",
        says: "len as u8",
    });
}

/// What `read_exact` on a nonblocking socket does to a frame that has not
/// all arrived: it takes the bytes that are there, fails with
/// `WouldBlock`, and they are lost.
#[test]
#[ignore = "builds a mutant of a stage: slow"]
fn read_exact_on_a_nonblocking_socket() {
    grade(Mutant {
        name: "read_exact",
        stage: &STEP_04,
        file: "src/client.rs",
        from: "                Ok(None) => break, // the rest has not arrived yet\n",
        to: "                Ok(None) => {\n\
             \x20                   // The mistake: the bytes of a frame that has not all\n\
             \x20                   // arrived are lost, as read_exact loses them.\n\
             \x20                   used = self.input.len();\n\
             \x20                   break;\n\
             \x20               }\n",
        fails_at: "echo::a_frame_in_three_pieces_comes_back_whole",
        says: "Close 1002",
    });
}

/// `Connection: Upgrade` compared by equality: Firefox sends
/// `Connection: keep-alive, Upgrade`.
#[test]
#[ignore = "builds a mutant of a stage: slow"]
fn connection_upgrade_compared_by_equality() {
    grade(Mutant {
        name: "connection_equals_upgrade",
        stage: &STEP_02,
        file: "src/handshake.rs",
        from: "    if !has_token(request.header(\"Connection\"), \"upgrade\") {\n",
        to: "    if request.header(\"Connection\") != Some(\"Upgrade\") {\n",
        fails_at: "handshake::firefox_sends_keep_alive_upgrade",
        says: "Connection: keep-alive, Upgrade",
    });
}

/// `unwrap()` on what a client sent: one message that is not JSON kills
/// the server, for everyone.
#[test]
#[ignore = "builds a mutant of a stage: slow"]
fn an_unwrap_on_client_input() {
    grade(Mutant {
        name: "unwrap",
        stage: &STEP_05,
        file: "src/chat.rs",
        from: "    let request = json::parse(text).map_err(|error| format!(\"invalid JSON: {error}\"))?;\n",
        to: "    let request = json::parse(text).unwrap();\n",
        fails_at: "chat::one_bad_message_does_not_stop_the_chat",
        says: "called `Result::unwrap()` on an `Err` value",
    });
}

/// A client the loop is done with, never removed from its list: its socket
/// is never closed, so a client that was dropped stays connected. The first
/// such client of stage 4's checks is one that never finishes its request,
/// in the checks kept from stage 1.
#[test]
#[ignore = "builds a mutant of a stage: slow"]
fn a_dropped_client_never_removed() {
    grade(Mutant {
        name: "never_removed",
        stage: &STEP_04,
        file: "src/lib.rs",
        from: "        clients.retain(|client| !client.is_closed());\n",
        to: "        // The mistake: closed clients are never removed.\n",
        fails_at: "http::a_silent_client_does_not_block_the_next_one_forever",
        says: "must also remove it",
    });
}
