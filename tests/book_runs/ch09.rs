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
use std::process::Command;
use std::time::Instant;
use ws_tests::patience;
use ws_tests::redis::RedisServer;

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
    let Some(redis) = RedisServer::try_start() else {
        return unchecked("step-09-two-servers.log");
    };
    let [a, mut b] = two_servers(&redis);
    let mut alice = join(a.address(), "alice"); // welcome
    // B has heard of alice once her join has crossed, a moment later; by
    // the next heartbeat at the latest.
    b.wait_for("hearing from server");
    thread::sleep(Duration::from_millis(1500)); // HEARTBEAT is 1 s
    let mut bob = join(b.address(), "Alice"); // taken: B knows her already
    join_as(&mut bob, "bob"); // welcome, with alice in the list
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
    finish(&redis, &mut [a, b])
}

/// Chapter 9, "When Redis goes away": Redis is killed in the middle of a
/// chat and started again. Only server A's log is shown: the other's
/// attempts to connect are timed by chance, and so is how many it makes.
fn step_09_redis_away() -> String {
    let Some(mut redis) = RedisServer::try_start() else {
        return unchecked("step-09-redis-away.log");
    };
    let [mut a, mut b] = two_servers(&redis);
    let mut alice = join(a.address(), "alice");
    let mut amy = join(a.address(), "amy");
    read_text(&mut alice);
    redis.stop();
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
    let mut cy = join(a.address(), "cy");
    a.wait_for("try again in a moment");
    a.wait_for("Connection refused (os error 111); trying again in ...ms");
    a.wait_for("Connection refused (os error 111); trying again in ...ms");
    redis.restart();
    a.wait_for("of ours never reached the other servers");
    read_text(&mut alice); // notice: in touch again
    join_as(&mut cy, "cy");
    read_text(&mut alice);
    b.collect();
    let log = finish_one(&redis, a, &[b]);
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
    let Some(redis) = RedisServer::try_start() else {
        return unchecked("step-09-server-killed.log");
    };
    let [mut a, mut b] = two_servers(&redis);
    let mut alice = join(a.address(), "alice");
    let _bob = join(b.address(), "bob");
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
    let _bob_again = join(a.address(), "bob");
    read_text(&mut alice);
    finish_one(&redis, a, &[b])
}

/// A run that needs `redis-server` and cannot have it: the book's file,
/// as it is.
fn unchecked(name: &str) -> String {
    eprintln!("runs/{name}: no redis-server on the PATH; left as it is, unchecked");
    fs::read_to_string(book_src().join("runs").join(name)).unwrap_or_default()
}

/// The two servers of a run, shown on 8080 and 8081, once each has
/// subscribed.
fn two_servers(redis: &RedisServer) -> [Server; 2] {
    let mut servers = [8080, 8081].map(|shown_port| Server::start(redis, shown_port));
    for server in &mut servers {
        server.wait_for("the chat crosses servers");
    }
    servers
}

/// The logs of `servers`, one after the other, each as the book shows it.
fn finish(redis: &RedisServer, servers: &mut [Server]) -> String {
    let logs: Vec<String> = servers.iter_mut().map(Server::collect).collect();
    normalize(&logs.join("\n"), redis, servers)
}

/// The log of `server` alone, as the book shows it; `others` are the
/// servers it may name.
fn finish_one(redis: &RedisServer, mut server: Server, others: &[Server]) -> String {
    let log = server.collect();
    let all = vec![server];
    normalize(&log, redis, &all)
        .lines()
        .map(|line| {
            let mut line = line.to_string();
            for other in others {
                if let Some(id) = &other.id {
                    line = line.replace(id.as_str(), NAMES[usize::from(other.shown_port - 8080)]);
                }
            }
            line + "\n"
        })
        .collect()
}

/// Stage 9's program with `--redis`, as the book's reader starts it on
/// `port` (8080 or 8081): the log starts with that command.
struct Server {
    run: Run,
    shown_port: u16,
    id: Option<String>,
}

impl Server {
    fn start(redis: &RedisServer, shown_port: u16) -> Server {
        let command =
            format!("$ cargo run -p step-09 -- 127.0.0.1:{shown_port} --redis {REDIS_SHOWN}");
        let run = Run::start_showing("step-09", &["--redis", &redis.address()], command);
        Server {
            run,
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
        let id = &mut self.id;
        self.run.wait_until(patience() * 2, text, |line| {
            note_id(id, line);
            shown_line(line).contains(text) || line.contains(text)
        });
    }

    /// Everything logged until the program fell quiet.
    fn collect(&mut self) -> String {
        let id = &mut self.id;
        self.run.collect(|line| note_id(id, line));
        self.run.text()
    }
}

/// A server's id, from the line that says it.
fn note_id(id: &mut Option<String>, line: &str) {
    if let Some(rest) = line.strip_prefix("redis: this server is ") {
        *id = rest.split(';').next().map(str::to_string);
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
fn normalize(log: &str, redis: &RedisServer, servers: &[Server]) -> String {
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
    number_clients(&log, |address| {
        kept.contains(&address).then(|| address.to_string())
    })
}
