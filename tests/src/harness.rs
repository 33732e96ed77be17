//! How `cargo test` runs a stage's checks against the reference stage: the
//! `main` of each stage's test file (`tests/step_03.rs`, which Cargo.toml
//! builds with `harness = false`).
//!
//! Why not one `#[test]` per check: a stage's checks are a list (see
//! [`crate::stages`]) that the grader runs too, and a `#[test]` needs its
//! name written in the source, so every check would be named twice, once
//! in the list and once as a test, and the two could drift. So this file
//! runs the list itself, the way the standard test harness would: each
//! check against a fresh reference server on a port of its own, several at
//! a time, with a line per check, and the name filters, `--exact`,
//! `--skip`, `--list`, `--ignored` and `--test-threads` that `cargo test`
//! passes on. A failure is reported as the grader reports it.

use crate::check::{self, Check, Outcome, Server};
use crate::report;
use crate::stages::Stage;
use std::collections::VecDeque;
use std::io::Write;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Instant;

thread_local! {
    /// The report of the check this worker just ran.
    static RESULT: std::cell::RefCell<String> = const { std::cell::RefCell::new(String::new()) };
}

/// Checks that measure time closely, run after all the others, one at a
/// time, so that the others' load does not disturb them.
const ALONE: &[&str] = &["idle", "limits"];

/// Runs `stage`'s checks, and `reference` (checks of the reference stage
/// alone), against the reference stage; `snapshot` compares what a check
/// kept with its snapshot. Returns the exit code for `main`.
pub fn run(
    stage: &'static Stage,
    reference: &'static [Check],
    snapshot: fn(&str, &str),
) -> ExitCode {
    let options = Options::parse(std::env::args().skip(1));
    let checks: Vec<&'static Check> = stage
        .checks()
        .chain(reference.iter())
        .filter(|check| options.selects(&check.id()))
        .collect();
    if options.list {
        for check in &checks {
            println!("{}: test", check.id());
        }
        return ExitCode::SUCCESS;
    }
    if options.ignored_only {
        // No check is ignored: there is nothing to run.
        println!("\nrunning 0 tests\n\ntest result: ok. 0 passed; 0 failed; 0 ignored\n");
        return ExitCode::SUCCESS;
    }
    let started = Instant::now();
    println!("\nrunning {} tests", checks.len());
    let (alone, together): (Vec<_>, Vec<_>) = checks
        .into_iter()
        .partition(|check| ALONE.contains(&check.suite));
    let mut failures = run_all(stage, together, options.threads, snapshot);
    failures.extend(run_all(stage, alone, 1, snapshot));
    let total = failures.len();
    let failed: Vec<&(String, String)> = failures
        .iter()
        .filter(|(_, report)| !report.is_empty())
        .collect();
    if !failed.is_empty() {
        println!("\nfailures:\n");
        for (id, report) in &failed {
            println!("---- {id} ----\n{report}");
        }
        println!("failures:");
        for (id, _) in &failed {
            println!("    {id}");
        }
    }
    println!(
        "\ntest result: {}. {} passed; {} failed; 0 ignored; 0 measured; 0 filtered out; finished in {:.2}s\n",
        if failed.is_empty() { "ok" } else { "FAILED" },
        total - failed.len(),
        failed.len(),
        started.elapsed().as_secs_f64()
    );
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(101)
    }
}

/// Runs `checks` on `threads` threads; returns each check's id and report
/// (empty if it passed).
fn run_all(
    stage: &'static Stage,
    checks: Vec<&'static Check>,
    threads: usize,
    snapshot: fn(&str, &str),
) -> Vec<(String, String)> {
    let expected: Vec<String> = checks.iter().map(|check| check.id()).collect();
    let queue = Arc::new(Mutex::new(checks.into_iter().collect::<VecDeque<_>>()));
    let results = Arc::new(Mutex::new(Vec::new()));
    let workers: Vec<_> = (0..threads.max(1))
        .map(|_| {
            let queue = queue.clone();
            let results = results.clone();
            thread::spawn(move || {
                loop {
                    let next = queue
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .pop_front();
                    let Some(check) = next else {
                        break;
                    };
                    // Whatever happens around the check is its failure too:
                    // a check must never go missing from the results.
                    let report = check::catch(|| {
                        let report = run_one(stage, check, snapshot);
                        RESULT.with(|result| *result.borrow_mut() = report);
                    })
                    .map_or_else(
                        || RESULT.with(|result| std::mem::take(&mut *result.borrow_mut())),
                        |failure| {
                            format!(
                                "    The harness failed around the check: {}\n",
                                failure.message
                            )
                        },
                    );
                    let verdict = if report.is_empty() { "ok" } else { "FAILED" };
                    println!("test {} ... {verdict}", check.id());
                    let _ = std::io::stdout().flush();
                    results
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .push((check.id(), report));
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    let mut results = std::mem::take(&mut *results.lock().unwrap());
    for check in expected {
        if !results.iter().any(|(id, _)| *id == check) {
            println!("test {check} ... FAILED");
            results.push((
                check,
                "    The check never reported: its thread died.\n".to_string(),
            ));
        }
    }
    results.sort();
    results
}

/// One check against a fresh reference server: its report, empty if it
/// passed.
fn run_one(stage: &'static Stage, check: &Check, snapshot: fn(&str, &str)) -> String {
    let mut server = Server::new(crate::start_server(stage.serve), stage.spec);
    let flags = stage.spec.flags();
    if !flags.is_empty() {
        server = server.with_launcher(crate::program::launcher(stage.package, flags));
    }
    let outcome: Outcome = check::run(check, &server);
    if !outcome.passed() {
        return report::failure(check, &outcome, None);
    }
    if let Some(why) = &outcome.skipped {
        // Not a failure of the stage (this machine has no 127.0.0.2, say),
        // but not a pass to keep quiet about either.
        println!("note: {} could not run here: {why}", check.id());
        return String::new();
    }
    if let Some(kept) = &outcome.kept {
        let name = format!("{}__{}", check.suite, check.name);
        if let Some(failure) = check::catch(|| snapshot(&name, kept)) {
            return format!(
                "    The check passed, but what it keeps differs from its snapshot, \
                 tests/snapshots/{name}.snap:\n{}\n",
                failure.message
            );
        }
    }
    String::new()
}

/// What `cargo test` passed on, as the standard harness reads it.
struct Options {
    filters: Vec<String>,
    skip: Vec<String>,
    exact: bool,
    list: bool,
    ignored_only: bool,
    threads: usize,
}

impl Options {
    fn parse(args: impl Iterator<Item = String>) -> Options {
        let cores = thread::available_parallelism().map_or(2, |n| n.get());
        let mut options = Options {
            filters: Vec::new(),
            skip: Vec::new(),
            exact: false,
            list: false,
            ignored_only: false,
            // The checks mostly wait for the network: more of them at once
            // than there are cores keeps the cores busy.
            threads: std::env::var("RUST_TEST_THREADS")
                .ok()
                .and_then(|n| n.parse().ok())
                .unwrap_or(cores * 3),
        };
        let mut args = args.peekable();
        while let Some(arg) = args.next() {
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) if flag.starts_with("--") => {
                    (flag.to_string(), Some(value.to_string()))
                }
                _ => (arg.clone(), None),
            };
            let value = |args: &mut std::iter::Peekable<_>| inline.clone().or_else(|| args.next());
            match flag.as_str() {
                "--exact" => options.exact = true,
                "--list" => options.list = true,
                "--ignored" => options.ignored_only = true,
                "--include-ignored" => {}
                "--test-threads" => {
                    if let Some(n) = value(&mut args).and_then(|n| n.parse().ok()) {
                        options.threads = n;
                    }
                }
                "--skip" => options.skip.extend(value(&mut args)),
                // Flags that change how the standard harness prints or
                // captures: every check here prints nothing of its own.
                "--format" | "--color" | "-Z" | "--logfile" => {
                    let _ = value(&mut args);
                }
                flag if flag.starts_with('-') => {}
                _ => options.filters.push(arg),
            }
        }
        options
    }

    fn selects(&self, id: &str) -> bool {
        let matches = |filter: &String| {
            if self.exact {
                id == filter
            } else {
                id.contains(filter.as_str())
            }
        };
        (self.filters.is_empty() || self.filters.iter().any(matches))
            && !self.skip.iter().any(|skip| id.contains(skip.as_str()))
    }
}
