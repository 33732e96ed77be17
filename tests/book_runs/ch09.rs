//! The runs chapter 9 shows: see `book_runs.rs`.
//!
//! Most of them need a real `redis-server` on the PATH (Debian's package
//! `redis-server`; CI installs it). Each starts its own, on a free port of
//! 127.0.0.1, with nothing saved to disk, and kills it when done. Where
//! there is no `redis-server`, such a run gives back the file the book
//! already has, unchecked, so that `cargo test --workspace` on a fresh
//! clone with only the Rust toolchain still passes; it says so on stderr.
//!
//! What differs from one run to the next is made the same, as the ports
//! are: each server's id (`SERVER-A`, `SERVER-B`), and the random part of
//! a wait before connecting again (`...ms`).

use super::*;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Instant;
use ws_tests::patience;

pub const RUNS: Runs = &[
    ("step-09-help.txt", step_09_help),
    ("step-09-two-servers.log", step_09_two_servers),
    ("step-09-redis-away.log", step_09_redis_away),
    ("step-09-server-killed.log", step_09_server_killed),
];

/// How the servers' ids are shown, by port: 8080, 8081.
const NAMES: [&str; 2] = ["SERVER-A", "SERVER-B"];

/// The port Redis is shown on: its default.
const REDIS_SHOWN: &str = "127.0.0.1:6379";

/// Chapter 9, "Try it": what `--help` prints. No Redis needed.
fn step_09_help() -> String {
    let output = Command::new(ws_tests::program::binary("step-09"))
        .arg("--help")
        .output()
        .expect("run step-09 --help");
    assert!(output.status.success());
    format!(
        "$ cargo run -p step-09 -- --help\n{}",
        String::from_utf8(output.stdout).unwrap()
    )
}

/// Chapter 9, "One chat over many servers": two servers, one Redis; alice
/// joins on one, bob on the other, each says something, bob leaves.
fn step_09_two_servers() -> String {
    let Some(redis) = Redis::start() else {
        return unchecked("step-09-two-servers.log");
    };
    let mut a = Server::start(&redis, 8080);
    let mut b = Server::start(&redis, 8081);
    a.wait_for("the chat crosses servers");
    b.wait_for("the chat crosses servers");
    let mut alice = ws_handshake(a.address());
    send_text(&mut alice, r#"{"type":"join","name":"alice"}"#);
    read_text(&mut alice); // welcome
    // B has heard of alice once her join has crossed, a moment later; by
    // the next heartbeat at the latest.
    b.wait_for("hearing from server");
    thread::sleep(Duration::from_millis(1500)); // HEARTBEAT is 1 s
    let mut bob = ws_handshake(b.address());
    send_text(&mut bob, r#"{"type":"join","name":"Alice"}"#);
    read_text(&mut bob); // taken: B knows her already
    send_text(&mut bob, r#"{"type":"join","name":"bob"}"#);
    read_text(&mut bob); // welcome, with alice in the list
    read_text(&mut alice); // bob joined
    send_text(&mut alice, r#"{"type":"message","text":"Hi bob!"}"#);
    read_text(&mut alice);
    read_text(&mut bob);
    send_text(
        &mut bob,
        r#"{"type":"message","text":"Hi alice, from the other server"}"#,
    );
    read_text(&mut bob);
    read_text(&mut alice);
    // Bob closes his tab: the browser sends a close frame with 1001.
    bob.write_all(&client_frame(true, 0x8, &[0x03, 0xe9]))
        .unwrap();
    read_frame(&mut bob);
    drop(bob);
    read_text(&mut alice); // bob left
    redis.finish(&mut [a, b])
}

/// Chapter 9, "When Redis goes away": Redis is killed in the middle of a
/// chat and started again. Only server A's log is shown: the other's
/// attempts to connect are timed by chance, and so is how many it makes.
fn step_09_redis_away() -> String {
    let Some(mut redis) = Redis::start() else {
        return unchecked("step-09-redis-away.log");
    };
    let mut a = Server::start(&redis, 8080);
    let mut b = Server::start(&redis, 8081);
    a.wait_for("the chat crosses servers");
    b.wait_for("the chat crosses servers");
    let mut alice = ws_handshake(a.address());
    send_text(&mut alice, r#"{"type":"join","name":"alice"}"#);
    read_text(&mut alice);
    let mut amy = ws_handshake(a.address());
    send_text(&mut amy, r#"{"type":"join","name":"amy"}"#);
    read_text(&mut amy);
    read_text(&mut alice);
    redis.kill();
    a.wait_for("the chat stops at this server");
    read_text(&mut alice); // notice: out of reach
    read_text(&mut amy);
    // The chat goes on here.
    send_text(
        &mut alice,
        r#"{"type":"message","text":"is anyone there?"}"#,
    );
    read_text(&mut alice);
    read_text(&mut amy);
    // Nobody new may join.
    let mut cy = ws_handshake(a.address());
    send_text(&mut cy, r#"{"type":"join","name":"cy"}"#);
    read_text(&mut cy);
    a.wait_for("try again in a moment");
    a.wait_for("Connection refused (os error 111); trying again in ...ms");
    a.wait_for("Connection refused (os error 111); trying again in ...ms");
    redis.restart();
    a.wait_for("events of ours never reached the other servers");
    read_text(&mut alice); // notice: in touch again
    send_text(&mut cy, r#"{"type":"join","name":"cy"}"#);
    read_text(&mut cy);
    read_text(&mut alice);
    b.collect();
    let log = redis.finish_one(a, &[b]);
    // Server A's log only, to the line before the one B's departure causes.
    log.lines()
        .take_while(|line| !line.contains("silent for"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Chapter 9, "One chat over many servers": server B dies without a word
/// (SIGKILL); server A counts its users gone when its silence has lasted
/// long enough, and the name is free again.
fn step_09_server_killed() -> String {
    let Some(redis) = Redis::start() else {
        return unchecked("step-09-server-killed.log");
    };
    let mut a = Server::start(&redis, 8080);
    let mut b = Server::start(&redis, 8081);
    a.wait_for("the chat crosses servers");
    b.wait_for("the chat crosses servers");
    let mut alice = ws_handshake(a.address());
    send_text(&mut alice, r#"{"type":"join","name":"alice"}"#);
    read_text(&mut alice);
    let mut bob = ws_handshake(b.address());
    send_text(&mut bob, r#"{"type":"join","name":"bob"}"#);
    read_text(&mut bob);
    read_text(&mut alice); // bob joined
    a.wait_for("hearing from server");
    b.run.program.child.kill().unwrap();
    let killed = Instant::now();
    read_text(&mut alice); // bob left, once B has been silent long enough
    let silent_for = killed.elapsed();
    assert!(silent_for < Duration::from_secs(7), "{silent_for:?}");
    // The name expires with the last refresh B made, at most a heartbeat
    // after the last members A heard: give it that long.
    thread::sleep(Duration::from_millis(1200));
    let mut bob_again = ws_handshake(a.address());
    send_text(&mut bob_again, r#"{"type":"join","name":"bob"}"#);
    read_text(&mut bob_again);
    read_text(&mut alice);
    redis.finish_one(a, &[b])
}

/// A run that needs `redis-server` and cannot have it: the book's file,
/// as it is.
fn unchecked(name: &str) -> String {
    eprintln!("runs/{name}: no redis-server on the PATH; left as it is, unchecked");
    fs::read_to_string(book_src().join("runs").join(name)).unwrap_or_default()
}

/// A `redis-server` of the run's own, killed when dropped.
struct Redis {
    port: u16,
    process: Option<Child>,
}

impl Redis {
    /// Starts one, if `redis-server` is on the PATH.
    fn start() -> Option<Redis> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status();
        if !found.is_ok_and(|status| status.success()) {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = Redis {
            port,
            process: None,
        };
        redis.restart();
        Some(redis)
    }

    fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts it (again, on the same port), and waits until it answers.
    fn restart(&mut self) {
        let port = self.port.to_string();
        let process = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", "no", "--daemonize", "no"])
            .stdout(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.process = Some(process);
        let start = Instant::now();
        loop {
            if let Ok(mut stream) = TcpStream::connect(self.address()) {
                let mut reply = [0; 7];
                stream.set_read_timeout(Some(patience())).unwrap();
                let pinged = stream.write_all(b"*1\r\n$4\r\nPING\r\n");
                if pinged.is_ok() && std::io::Read::read_exact(&mut stream, &mut reply).is_ok() {
                    return;
                }
            }
            assert!(start.elapsed() < patience(), "redis-server did not start");
            thread::sleep(Duration::from_millis(10));
        }
    }

    fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            let _ = process.kill();
            let _ = process.wait();
        }
    }

    /// The logs of `servers`, one after the other, each as the book shows it.
    fn finish(&self, servers: &mut [Server]) -> String {
        let logs: Vec<String> = servers.iter_mut().map(Server::collect).collect();
        normalize(&logs.join("\n"), self, servers)
    }

    /// The log of `server` alone, as the book shows it; `others` are the
    /// servers it may name.
    fn finish_one(&self, mut server: Server, others: &[Server]) -> String {
        let log = server.collect();
        let all = vec![server];
        normalize(&log, self, &all)
            .lines()
            .map(|line| {
                let mut line = line.to_string();
                for other in others {
                    if let Some(id) = &other.id {
                        line =
                            line.replace(id.as_str(), NAMES[usize::from(other.shown_port - 8080)]);
                    }
                }
                line + "\n"
            })
            .collect()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Stage 9's program with `--redis`, as the book's reader starts it on
/// `port` (8080 or 8081): the log starts with that command.
struct Server {
    run: Run,
    shown_port: u16,
    id: Option<String>,
}

impl Server {
    fn start(redis: &Redis, shown_port: u16) -> Server {
        let mut child = Command::new(ws_tests::program::binary("step-09"))
            .args(["127.0.0.1:0", "--redis", &redis.address()])
            .stdout(Stdio::piped())
            .spawn()
            .expect("start step-09");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        stdout.read_line(&mut first_line).unwrap();
        let address = first_line
            .trim()
            .strip_prefix("Listening on http://")
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("not an address: {first_line:?}"));
        let (sender, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let command =
            format!("$ cargo run -p step-09 -- 127.0.0.1:{shown_port} --redis {REDIS_SHOWN}");
        let program = Program {
            child,
            address,
            stdout: None,
        };
        let log = vec![command, format!("Listening on http://{address}")];
        Server {
            run: Run {
                program,
                lines,
                log,
            },
            shown_port,
            id: None,
        }
    }

    fn address(&self) -> SocketAddr {
        self.run.address()
    }

    /// Waits until the program logs a line that contains `text` (once made
    /// the same as the book shows it), keeping every line on the way.
    fn wait_for(&mut self, text: &str) {
        loop {
            let line = self
                .run
                .lines
                .recv_timeout(patience() * 2)
                .unwrap_or_else(|_| panic!("the program never logged {text:?}"));
            self.note_id(&line);
            let found = shown_line(&line).contains(text) || line.contains(text);
            self.run.log.push(line);
            if found {
                return;
            }
        }
    }

    /// This server's id, from the line that says it.
    fn note_id(&mut self, line: &str) {
        if let Some(rest) = line.strip_prefix("redis: this server is ") {
            self.id = rest.split(';').next().map(str::to_string);
        }
    }

    /// Everything logged until the program fell quiet.
    fn collect(&mut self) -> String {
        while let Ok(line) = self.run.lines.recv_timeout(Duration::from_millis(300)) {
            self.note_id(&line);
            self.run.log.push(line);
        }
        self.run.log.join("\n") + "\n"
    }
}

/// The random part of a wait is shown as `...`: `trying again in 73ms` is
/// `trying again in ...ms`.
fn shown_line(line: &str) -> String {
    const WAIT: &str = "trying again in ";
    let Some(at) = line.find(WAIT) else {
        return line.to_string();
    };
    let start = at + WAIT.len();
    let number = line[start..]
        .bytes()
        .take_while(|byte| byte.is_ascii_digit() || *byte == b'.')
        .count();
    format!("{}...{}", &line[..start], &line[start + number..])
}

/// Ports, ids and waits shown the same on every run: the servers on their
/// ports (8080, 8081), Redis on 6379, the clients 50001, 50002, ...
fn normalize(log: &str, redis: &Redis, servers: &[Server]) -> String {
    let mut log: String = log.lines().map(|line| shown_line(line) + "\n").collect();
    log = log.replace(&redis.address(), REDIS_SHOWN);
    let all: Vec<(String, u16, Option<String>)> = servers
        .iter()
        .map(|server| {
            (
                server.address().to_string(),
                server.shown_port,
                server.id.clone(),
            )
        })
        .collect();
    for (address, shown_port, id) in all {
        log = log.replace(&address, &format!("127.0.0.1:{shown_port}"));
        if let Some(id) = id {
            log = log.replace(&id, NAMES[usize::from(shown_port - 8080)]);
        }
    }
    // The clients: every 127.0.0.1 address that is neither a server's
    // nor Redis's, numbered from 50001 in the order they appear.
    let kept = ["127.0.0.1:8080", "127.0.0.1:8081", REDIS_SHOWN];
    let mut clients: Vec<String> = Vec::new();
    let mut output = String::new();
    let mut rest = log.as_str();
    while let Some(at) = rest.find("127.0.0.1:") {
        output.push_str(&rest[..at]);
        let after = &rest[at + "127.0.0.1:".len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        let address = &rest[at..at + "127.0.0.1:".len() + digits];
        if digits == 0 || kept.contains(&address) {
            output.push_str(address);
        } else {
            let index = match clients.iter().position(|known| known == address) {
                Some(index) => index,
                None => {
                    clients.push(address.to_string());
                    clients.len() - 1
                }
            };
            output.push_str(&format!("127.0.0.1:{}", 50001 + index));
        }
        rest = &after[digits..];
    }
    output.push_str(rest);
    output
}
