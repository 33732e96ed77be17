//! The servers under test: how to build them, start them, and watch what
//! they use (CPU time and memory, from /proc: Linux only).

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::Duration;

/// The reference server: the binary of the package in `reference/`
/// (`reference/src/main.rs`).
pub const REFERENCE: &str = "tokio-tungstenite";

/// The second peer: the same chat on Node.js with the `ws` package
/// (`node/server.js`), as a reader of this book would write it.
pub const NODE: &str = "node-ws";

/// The Node.js peer's folder, from the root of the repository: its
/// `package.json` pins `ws`, and `npm ci` installs it there.
const NODE_DIR: &str = "tests/bench/node";

/// The reference's manifest, from the root of the repository. It is a
/// workspace of its own, outside the repository's, so that no command on
/// the workspace (`cargo test --workspace`, say) ever compiles tokio: only
/// the bench builds it, and only when it measures it.
const REFERENCE_MANIFEST: &str = "tests/bench/reference/Cargo.toml";

/// A server is either a stage, built as its own package (`step-05`), the
/// reference, built from its own manifest, or the Node.js peer.
fn is_stage(name: &str) -> bool {
    name != REFERENCE && name != NODE
}

/// Builds every server in `names` with cargo, in release mode, as
/// `cargo build --release -p step-04 -p step-05` and
/// `cargo build --release --locked --manifest-path tests/bench/reference/Cargo.toml --target-dir target`
/// would. The reference shares the workspace's target directory, so that
/// its binary lands beside the stages'; `--locked` holds it to the versions
/// in its own Cargo.lock.
pub fn build(names: &[String]) {
    let stages: Vec<&String> = names.iter().filter(|name| is_stage(name)).collect();
    if !stages.is_empty() {
        let mut packages = Vec::new();
        for stage in stages {
            packages.extend(["-p", stage.as_str()]);
        }
        cargo_build(&packages);
    }
    if names.iter().any(|name| name == NODE) {
        install_node_peer();
    }
    if names.iter().any(|name| name == REFERENCE) {
        let target = target_dir();
        let target = target.to_str().expect("a target directory named in UTF-8");
        cargo_build(&[
            "--locked",
            "--manifest-path",
            REFERENCE_MANIFEST,
            "--target-dir",
            target,
        ]);
    }
}

fn cargo_build(arguments: &[&str]) {
    // `cargo run` tells the program which cargo started it.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    eprintln!("building: cargo build --release {}", arguments.join(" "));
    let status = Command::new(&cargo)
        .args(["build", "--release"])
        .args(arguments)
        .current_dir(workspace_dir())
        .status()
        .unwrap_or_else(|error| panic!("cannot run {cargo}: {error}"));
    if !status.success() {
        eprintln!(
            "the build failed: cargo build --release {}",
            arguments.join(" ")
        );
        std::process::exit(1);
    }
}

/// `npm ci` in the Node.js peer's folder, when `ws` is not installed there
/// yet or the lock file is newer than what is (as the browser tests do).
fn install_node_peer() {
    let folder = workspace_dir().join(NODE_DIR);
    let installed = folder.join("node_modules/.package-lock.json");
    let modified = |path: &Path| {
        std::fs::metadata(path)
            .and_then(|data| data.modified())
            .ok()
    };
    if modified(&installed).is_some()
        && modified(&installed) >= modified(&folder.join("package-lock.json"))
    {
        return;
    }
    eprintln!("installing: npm ci (in {NODE_DIR})");
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&folder)
        .status();
    if !status.is_ok_and(|status| status.success()) {
        eprintln!("npm ci failed in {NODE_DIR}: {NODE} needs Node.js 20 or later and npm");
        std::process::exit(1);
    }
}

/// The root of the repository: two folders above this package's.
fn workspace_dir() -> PathBuf {
    let bench = Path::new(env!("CARGO_MANIFEST_DIR"));
    bench.ancestors().nth(2).unwrap().to_path_buf()
}

/// The workspace's target directory: `CARGO_TARGET_DIR`, or `target/`.
fn target_dir() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_dir().join("target"));
    std::path::absolute(&target).unwrap_or(target)
}

/// Where cargo put a server's release binary: `target/release/step-05`, or
/// `target/release/tokio-tungstenite` for the reference.
fn binary(name: &str) -> PathBuf {
    target_dir().join("release").join(name)
}

/// A server, running as a child process until dropped.
pub struct Server {
    child: Child,
    pub address: SocketAddr,
}

impl Server {
    /// Starts a server on a port of the system's choice, and waits for the
    /// line where it says which: `Listening on http://127.0.0.1:PORT`.
    pub fn start(name: &str) -> Server {
        let mut command = if name == NODE {
            let mut node = Command::new("node");
            node.arg(workspace_dir().join(NODE_DIR).join("server.js"));
            node
        } else {
            Command::new(binary(name))
        };
        let program = format!("{:?}", command.get_program());
        let mut child = command
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| panic!("cannot start {program}: {error}"));
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(|line| line.ok()).unwrap_or_default();
        let address = first
            .rsplit("http://")
            .next()
            .and_then(|address| address.trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} did not say where it listens: {first:?}"));
        // Keep reading the server's log so that it never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        Server { child, address }
    }

    /// User plus system CPU time the server has used so far.
    pub fn cpu_time(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // The command name may contain spaces; the fields we want follow ')'.
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .collect();
        let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        Duration::from_secs_f64(ticks as f64 / clock_ticks_per_second())
    }

    /// The server's CPU use while the bench sleeps for `measured`, as a
    /// percentage of one core.
    pub fn cpu_use_over(&self, measured: Duration) -> f64 {
        let before = self.cpu_time();
        thread::sleep(measured);
        let used = self.cpu_time() - before;
        100.0 * used.as_secs_f64() / measured.as_secs_f64()
    }

    /// The server's memory in RAM (its resident set size), in KiB: what its
    /// buffers really occupy, not what it reserved and never touched.
    pub fn resident_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        // The line looks like "VmRSS:	    2048 kB".
        let line = status.lines().find(|line| line.starts_with("VmRSS:"));
        let kib = line.and_then(|line| line.split_whitespace().nth(1));
        kib.and_then(|kib| kib.parse().ok())
            .expect("VmRSS in /proc/PID/status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn clock_ticks_per_second() -> f64 {
    let output = Command::new("getconf").arg("CLK_TCK").output();
    output
        .ok()
        .and_then(|output| String::from_utf8(output.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Raises this process's limit on open files to `wanted` if it may (the
/// hard limit too, which only root may raise), or else as far as the hard
/// limit allows, and returns the new limit. The servers the bench starts
/// inherit it: each side of 10,000 connections needs 10,000 files.
pub fn raise_open_file_limit(wanted: u64) -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write `limit`.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        let hard = limit.rlim_max.max(wanted);
        for max in [hard, limit.rlim_max] {
            let raised = libc::rlimit {
                rlim_cur: max,
                rlim_max: max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return max;
            }
        }
    }
    limit.rlim_cur
}

/// The memory the system could still give, in KiB (`MemAvailable`).
pub fn available_kib() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let line = meminfo
        .lines()
        .find(|line| line.starts_with("MemAvailable:"));
    let kib = line.and_then(|line| line.split_whitespace().nth(1));
    kib.and_then(|kib| kib.parse().ok()).unwrap_or(u64::MAX)
}
