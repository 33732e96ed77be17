//! A stage's own program, run as a reader runs it, for the tests that need
//! `main.rs` and its log, or a process of its own.

use std::io;
use std::net::SocketAddr;

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
        Program::start_with(package, &[])
    }

    /// As [`Program::start`], with options after the address, as
    /// `cargo run -p PACKAGE -- 127.0.0.1:0 OPTIONS` starts it.
    pub fn start_with(package: &str, options: &[&str]) -> Program {
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
