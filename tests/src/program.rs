//! A stage's own program, run as a reader runs it, for the tests that need
//! `main.rs` and its log, or a process of its own.

use crate::check::{Instance, Launcher, Signal};
use crate::stages::Stage;
use std::io;
use std::net::SocketAddr;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A stage's own program, as `cargo run -p PACKAGE -- 127.0.0.1:0` starts
/// it, with its standard output in a pipe: what a reader runs, `main.rs`
/// and its log included. Dropping it kills the process.
pub struct Program {
    pub child: std::process::Child,
    pub address: SocketAddr,
    /// The read end of the pipe the program logs to.
    pub stdout: Option<io::BufReader<std::process::ChildStdout>>,
}

impl Program {
    /// Builds the package's binary (once per test process) and starts it on
    /// an ephemeral port, which it reads from the first line of the log.
    pub fn start(package: &str) -> Program {
        Program::start_with::<&str>(package, &[])
    }

    /// As [`Program::start`], with options after the address, as
    /// `cargo run -p PACKAGE -- 127.0.0.1:0 OPTIONS` starts it.
    pub fn start_with<S: AsRef<std::ffi::OsStr>>(package: &str, options: &[S]) -> Program {
        let mut command = std::process::Command::new(binary(package));
        command.arg("127.0.0.1:0").args(options);
        Program::spawn(command)
    }

    /// Starts `command` (a stage's program, or a shell that runs one) with
    /// its standard output in a pipe, and reads the address it listens on
    /// from the first line of the log.
    pub fn spawn(mut command: std::process::Command) -> Program {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the stage's program");
        let mut stdout = io::BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        io::BufRead::read_line(&mut stdout, &mut first_line).unwrap();
        let address = first_line
            .trim()
            .strip_prefix("Listening on http://")
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("not an address: {first_line:?}"));
        Program {
            child,
            address,
            stdout: Some(stdout),
        }
    }

    /// Whether the program is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

/// A program that the shutdown checks stop with a signal.
impl Instance for Program {
    fn address(&self) -> SocketAddr {
        self.address
    }

    fn signal(&mut self, signal: Signal) {
        unsafe extern "C" {
            fn kill(pid: i32, signal: i32) -> i32;
        }
        // SAFETY: a system call on our own child, which we have not waited
        // for yet, so its pid is still its own.
        let sent = unsafe { kill(self.child.id() as i32, signal.number()) };
        assert!(sent == 0, "could not send {} to the program", signal.name());
    }

    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        wait_for_exit(&mut self.child, timeout)
    }
}

/// Waits up to `timeout` for `child` to exit: its exit code, `-1` if a
/// signal ended it, `None` if it is still running.
pub fn wait_for_exit(child: &mut std::process::Child, timeout: Duration) -> Option<i32> {
    let until = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status.code().unwrap_or(-1));
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Starts `package`'s program with `flags`, each time it is called, its log
/// read and let go of (a full pipe would stall it): for the checks that
/// stop a server of their own (see [`crate::Server::launch`]).
pub fn launcher(package: &'static str, flags: Vec<String>) -> Launcher {
    Arc::new(move || {
        let mut program = Program::start_with(package, &flags);
        if let Some(mut log) = program.stdout.take() {
            std::thread::spawn(move || io::copy(&mut log, &mut io::sink()));
        }
        Ok(Box::new(program) as Box<dyn Instance>)
    })
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a package's binary, built by `cargo build` the first time it
/// is asked for: the binaries of the stages are not dependencies of the
/// tests, so `cargo test` does not build them.
pub fn binary(package: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    // The test runs from target/debug/deps/; binaries are in target/debug/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|name| name == package) {
        let cargo = std::env::var("CARGO").unwrap_or("cargo".to_string());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--bin", package, "-p", package])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_string());
    }
    profile_dir.join(format!("{package}{}", std::env::consts::EXE_SUFFIX))
}

/// Every flag the program of stage 8 takes, and of the stages after it.
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

/// The program of a stage from 8 on: `--help` exits with 0 and names every
/// flag of stage 8, those of `more` (the stage's own), and those its checks
/// start it with.
pub fn help_lists_every_flag(stage: &Stage, more: &[&str]) {
    let output = Command::new(binary(stage.package))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let help = String::from_utf8_lossy(&output.stdout);
    let spec_flags = stage.spec.flags();
    let given = spec_flags.iter().filter(|flag| flag.starts_with("--"));
    for flag in FLAGS
        .iter()
        .chain(more)
        .copied()
        .chain(given.map(String::as_str))
    {
        assert!(
            help.lines()
                .any(|line| line.trim_start().split([' ', ',']).any(|word| word == flag)),
            "--help does not list {flag}:\n{help}"
        );
    }
}

/// A flag it does not know is a mistake: exit status 2, a message that
/// names it, and the usage.
pub fn an_unknown_flag_exits_with_2_and_says_which(package: &str) {
    let output = Command::new(binary(package))
        .args(["127.0.0.1:0", "--ping-intervall", "1"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("--ping-intervall"), "{error}");
    assert!(error.contains("usage:"), "{error}");
}
