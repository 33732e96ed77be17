//! Starting the server to grade, waiting until it accepts connections, and
//! stopping it again: the whole of it, for `cargo run` starts a child of
//! its own.
//!
//! The command runs in a process group of its own, with its output in a
//! log file; stopping it sends SIGTERM to the group (with `kill`, since std
//! cannot send a signal), then SIGKILL if it is still there. A group of its
//! own also means that Ctrl-C in the terminal does not reach it, so a small
//! watchdog (`sh`, in a group of its own too) holds the read end of a pipe
//! from the grader: if the grader dies without saying "done", the pipe
//! closes, and the watchdog stops the group.

use std::fs::{self, File};
use std::io::{self, BufRead, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// A server command, running.
pub struct Started {
    child: Child,
    watchdog: Option<(Child, ChildStdin)>,
    pub address: SocketAddr,
    /// Where its standard output and error go.
    pub log: PathBuf,
    /// The command, as run (placeholders replaced).
    pub command: Vec<String>,
}

/// Why a server command could not be graded.
#[derive(Debug)]
pub enum StartError {
    /// Misuse: the command names neither `{address}` nor `{port}`.
    NoPlaceholder,
    /// Misuse: the command cannot be run at all.
    CannotRun(String, io::Error),
    /// The command exited before it accepted a connection.
    Exited(ExitStatus, PathBuf),
    /// It did not accept a connection in time.
    NeverListened(Duration, PathBuf),
    Io(io::Error),
}

impl From<io::Error> for StartError {
    fn from(error: io::Error) -> StartError {
        StartError::Io(error)
    }
}

/// A free port of 127.0.0.1: one that the system just gave us, and that
/// we let go again for the server.
pub fn free_address() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// `command` with `{address}` and `{port}` replaced; `None` if it has
/// neither, and would not listen where the grader looks.
pub fn substitute(command: &[String], address: SocketAddr) -> Option<Vec<String>> {
    let mentions = command
        .iter()
        .any(|arg| arg.contains("{address}") || arg.contains("{port}"));
    mentions.then(|| {
        command
            .iter()
            .map(|arg| {
                arg.replace("{address}", &address.to_string())
                    .replace("{port}", &address.port().to_string())
            })
            .collect()
    })
}

/// Starts `command` on a free port, and waits (up to `startup`) until it
/// accepts connections. `progress` hears about the wait.
pub fn start(
    command: &[String],
    startup: Duration,
    log_dir: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Started, StartError> {
    let address = free_address()?;
    let command = substitute(command, address).ok_or(StartError::NoPlaceholder)?;
    fs::create_dir_all(log_dir)?;
    let log = log_dir.join("server.log");
    let output = File::create(&log)?;
    let child = Command::new(&command[0])
        .args(&command[1..])
        .stdin(Stdio::null())
        .stdout(output.try_clone()?)
        .stderr(output)
        .process_group(0)
        .spawn()
        .map_err(|error| StartError::CannotRun(command[0].clone(), error))?;
    let watchdog = start_watchdog(child.id()).ok();
    let mut started = Started {
        child,
        watchdog,
        address,
        log,
        command,
    };
    let began = Instant::now();
    let mut told = Duration::ZERO;
    loop {
        if let Some(status) = started.child.try_wait()? {
            let log = started.log.clone();
            started.stop();
            return Err(StartError::Exited(status, log));
        }
        if TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_ok() {
            return Ok(started);
        }
        let waited = began.elapsed();
        if waited > startup {
            let log = started.log.clone();
            started.stop();
            return Err(StartError::NeverListened(startup, log));
        }
        if waited >= told + Duration::from_secs(10) {
            told = waited;
            progress(&format!(
                "still waiting after {} s (the last line of its output: {})",
                waited.as_secs(),
                last_lines(&started.log, 1)
                    .first()
                    .map_or("none", String::as_str)
            ));
        }
        thread::sleep(Duration::from_millis(50));
    }
}

/// `sh -c 'read line; ...'` in a group of its own: if the grader goes away
/// without writing `done`, it stops the server's group.
fn start_watchdog(group: u32) -> io::Result<(Child, ChildStdin)> {
    let mut watchdog = Command::new("sh")
        .args([
            "-c",
            r#"read line; [ "$line" = done ] || kill -TERM -- "-$1" 2>/dev/null"#,
            "grade-watchdog",
        ])
        .arg(group.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()?;
    let stdin = watchdog.stdin.take().unwrap();
    Ok((watchdog, stdin))
}

impl Started {
    /// Whether the command has exited, and how.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// Stops the whole process group: SIGTERM, then SIGKILL after 3 s.
    pub fn stop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = signal("-TERM", &group);
        let deadline = Instant::now() + Duration::from_secs(3);
        while self.exited().is_none() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(20));
        }
        // The group's leader may be gone and others still there: once more,
        // to all of it.
        let _ = signal("-KILL", &group);
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some((mut watchdog, mut stdin)) = self.watchdog.take() {
            let _ = writeln!(stdin, "done");
            drop(stdin);
            let _ = watchdog.wait();
        }
    }
}

/// A fresh server, for the checks that stop one with a signal: the signal
/// goes to its whole group, as Ctrl-C in a terminal does (`cargo run`
/// passes it on to the server, or is replaced by it).
impl ws_tests::check::Instance for Started {
    fn address(&self) -> SocketAddr {
        self.address
    }

    fn signal(&mut self, signal: ws_tests::check::Signal) {
        let name = format!("-{}", signal.number());
        let _ = self::signal(&name, &format!("-{}", self.child.id()));
    }

    fn wait(&mut self, timeout: Duration) -> Option<i32> {
        ws_tests::program::wait_for_exit(&mut self.child, timeout)
    }
}

impl Drop for Started {
    fn drop(&mut self) {
        if self.watchdog.is_some() {
            self.stop();
        }
    }
}

/// `kill SIGNAL -- TARGET`, quietly.
fn signal(signal: &str, target: &str) -> io::Result<ExitStatus> {
    Command::new("kill")
        .args([signal, "--", target])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
}

/// The last `count` lines of a log.
pub fn last_lines(path: &Path, count: usize) -> Vec<String> {
    let Ok(file) = File::open(path) else {
        return Vec::new();
    };
    let lines: Vec<String> = io::BufReader::new(file)
        .lines()
        .map_while(Result::ok)
        .collect();
    lines[lines.len().saturating_sub(count)..].to_vec()
}
