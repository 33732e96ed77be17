//! Stage 9: the chat over several servers and a real Redis, over real
//! sockets. Each test starts `redis-server` on a free port of 127.0.0.1
//! (nothing saved to disk) and stage 9's own program (`step-09 --redis`)
//! as child processes, and stops them all when done, however it ends.
//! The tests that need `redis-server` on the PATH (Debian's package
//! `redis-server`) run only when asked:
//!
//! ```console
//! $ cargo test -p ws-tests --test redis -- --ignored
//! ```
//!
//! The others run with every `cargo test`: what a server does when its
//! Redis is not there, and that a port is shared only with `--redis`.

use std::collections::HashMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};
use step_09::json::{self, Value};
use ws_tests::redis::{RedisServer, free_port};
use ws_tests::{CLOSE, Conn, PING, Program, TEXT, send_frame, try_read_frame, ws_handshake};

/// How long anything that should happen may take, at most, before a test fails.
const PATIENCE: Duration = Duration::from_secs(5);

// ANCHOR: chat_server
/// The stage's program, with `--redis`: killed when dropped. Its log is
/// read all along (a log nobody reads would drop lines), and kept.
struct ChatServer {
    address: SocketAddr,
    program: Program,
    log: Arc<Mutex<Vec<String>>>,
}

impl ChatServer {
    /// Starts a server on `address` (port 0 for any), and waits until it
    /// has subscribed.
    fn start(address: &str, redis: &RedisServer) -> ChatServer {
        ChatServer::start_with(address, redis, &[])
    }

    /// As [`ChatServer::start`], with stage 8's flags too.
    fn start_with(address: &str, redis: &RedisServer, flags: &[&str]) -> ChatServer {
        let server = ChatServer::spawn(&[address, "--redis", &redis.address()], flags);
        server.wait_for_log("the chat crosses servers", 1);
        server
    }

    /// Starts the program with these arguments, without waiting for Redis.
    fn spawn(args: &[&str], flags: &[&str]) -> ChatServer {
        let mut command = Command::new(ws_tests::program::binary("step-09"));
        command.args(args).args(flags);
        let mut program = Program::spawn(command);
        let lines = program.stdout.take().unwrap().lines();
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = Arc::clone(&log);
        thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                kept.lock().unwrap().push(line);
            }
        });
        ChatServer {
            address: program.address,
            program,
            log,
        }
    }

    /// Waits until `count` lines of the log hold `text`.
    fn wait_for_log(&self, text: &str, count: usize) {
        let start = Instant::now();
        while self.log_count(text) < count {
            assert!(start.elapsed() < PATIENCE, "no {text:?} in the log");
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_count(&self, text: &str) -> usize {
        let log = self.log.lock().unwrap();
        log.iter().filter(|line| line.contains(text)).count()
    }

    /// The CPU time the process has used, in clock ticks (usually 1/100
    /// s): fields 14 and 15 of `/proc/PID/stat`, user and system time.
    fn cpu_ticks(&self) -> u64 {
        let pid = self.program.child.id();
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        // The name, in parentheses, may hold spaces: count after it.
        let after_name = stat.rsplit(')').next().unwrap();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        // Field 3 (the state) is the first after the name.
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// SIGKILL: no goodbye to anyone.
    fn kill(&mut self) {
        self.program.child.kill().unwrap();
        self.program.child.wait().unwrap();
    }

    /// SIGTERM, as `kill PID` or a service manager sends it: stop, politely.
    fn terminate(&self) {
        let pid = self.program.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(status.success(), "kill -TERM {pid}");
    }

    /// How the process ended, if it did within `wait`.
    fn exit_within(&mut self, wait: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Some(status) = self.program.child.try_wait().unwrap() {
                return Some(status);
            }
            if start.elapsed() > wait {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }
}
// ANCHOR_END: chat_server

// ANCHOR: chatter
/// A chat client over a real WebSocket (the test client's, see
/// `tests/src/client.rs`): just enough of one.
struct Chatter {
    stream: Conn,
    /// The pings the server sent (left unanswered: this client is quiet).
    pings: usize,
    /// The status code of the server's close frame, once it came.
    closed_with: Option<u16>,
}

impl Chatter {
    fn connect(address: SocketAddr) -> Chatter {
        Chatter {
            stream: ws_handshake(address),
            pings: 0,
            closed_with: None,
        }
    }

    /// Sends one masked text frame.
    fn send(&mut self, text: &str) {
        send_frame(&mut self.stream, true, TEXT, text.as_bytes());
    }

    /// The next text message, if one comes within `wait`, and before a
    /// close frame. Pings are counted, not answered.
    fn next_within(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            // What has come already is read even once the time is up.
            let left = deadline.saturating_duration_since(Instant::now());
            let left = left.max(Duration::from_millis(1));
            self.stream.set_read_timeout(Some(left)).unwrap();
            let frame = try_read_frame(&mut self.stream).ok()?;
            assert!(frame.fin, "a final frame");
            match frame.opcode {
                TEXT => {
                    return Some(json::parse(&String::from_utf8(frame.payload).unwrap()).unwrap());
                }
                CLOSE => {
                    self.closed_with = frame.close_code();
                    return None;
                }
                PING => self.pings += 1,
                other => panic!("an unexpected frame, opcode {other:#x}"),
            }
        }
    }

    fn next(&mut self) -> Value {
        self.next_within(PATIENCE).expect("a message")
    }

    fn join(&mut self, name: &str) -> Value {
        self.send(&format!(r#"{{"type":"join","name":"{name}"}}"#));
        self.next()
    }

    fn say(&mut self, text: &str) {
        self.send(&format!(r#"{{"type":"message","text":"{text}"}}"#));
    }
}
// ANCHOR_END: chatter

fn field<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or("")
}

fn users(welcome: &Value) -> Vec<String> {
    assert_eq!(
        field(welcome, "type"),
        "welcome",
        "{}",
        json::encode(welcome)
    );
    let Some(Value::Array(users)) = welcome.get("users") else {
        panic!("a welcome lists users");
    };
    let mut users: Vec<String> = users
        .iter()
        .map(|user| user.as_str().unwrap().to_string())
        .collect();
    users.sort();
    users
}

/// Expects `kind` (`join` or `leave`) about `name`, next.
fn expect_notice(chatter: &mut Chatter, kind: &str, name: &str) {
    let notice = chatter.next();
    assert_eq!(
        (field(&notice, "type"), field(&notice, "name")),
        (kind, name),
        "{}",
        json::encode(&notice)
    );
}

/// Nothing more arrives for a while.
fn expect_silence(chatter: &mut Chatter, wait: Duration) {
    if let Some(value) = chatter.next_within(wait) {
        panic!("unexpected {}", json::encode(&value));
    }
}

// ANCHOR: test_many_servers
/// `servers` servers, two clients on each; they join one after the other,
/// each says `count` things, then they leave one after the other. Every
/// client gets every join, message and leave exactly once, and the
/// messages of each sender in the order they were sent.
fn one_chat_over(servers: usize, count: usize) {
    let redis = RedisServer::start();
    // Each client sends its messages as fast as it can: more than stage 8's
    // token bucket lets through (see `stage_8s_rules_hold_with_redis`).
    let flags = ["--max-messages-per-second", "1000"];
    let servers: Vec<ChatServer> = (0..servers)
        .map(|_| ChatServer::start_with("127.0.0.1:0", &redis, &flags))
        .collect();
    let mut chatters: Vec<(String, Chatter)> = Vec::new();
    for (index, server) in servers.iter().chain(&servers).enumerate() {
        let name = format!("user{index}");
        let mut chatter = Chatter::connect(server.address);
        let welcome = chatter.join(&name);
        let mut expected: Vec<String> = chatters.iter().map(|(name, _)| name.clone()).collect();
        expected.push(name.clone());
        expected.sort();
        assert_eq!(users(&welcome), expected, "everyone, on every server");
        for (_, other) in &mut chatters {
            expect_notice(other, "join", &name);
        }
        chatters.push((name, chatter));
    }
    for round in 0..count {
        for (name, chatter) in &mut chatters {
            chatter.say(&format!("{name} says {round}"));
        }
    }
    let total = chatters.len() * count;
    let names: Vec<String> = chatters.iter().map(|(name, _)| name.clone()).collect();
    for (_, chatter) in &mut chatters {
        let mut heard: HashMap<String, Vec<String>> = HashMap::new();
        for _ in 0..total {
            let message = chatter.next();
            assert_eq!(field(&message, "type"), "message");
            let from = field(&message, "from").to_string();
            heard
                .entry(from)
                .or_default()
                .push(field(&message, "text").to_string());
        }
        assert_eq!(heard.len(), names.len(), "from everyone");
        for name in &names {
            let said: Vec<String> = (0..count)
                .map(|round| format!("{name} says {round}"))
                .collect();
            assert_eq!(heard[name], said, "in order, once each");
        }
    }
    // Then nothing more: no message came twice.
    for (_, chatter) in &mut chatters {
        expect_silence(chatter, Duration::from_millis(300));
    }
    while let Some((name, chatter)) = chatters.pop() {
        drop(chatter);
        for (_, other) in &mut chatters {
            expect_notice(other, "leave", &name);
        }
    }
}
// ANCHOR_END: test_many_servers

#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn two_servers_are_one_chat() {
    one_chat_over(2, 50);
}

#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn three_servers_are_one_chat() {
    one_chat_over(3, 50);
}

// ANCHOR: test_names
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn a_name_taken_on_one_server_is_taken_on_all() {
    let redis = RedisServer::start();
    let a = ChatServer::start("127.0.0.1:0", &redis);
    let b = ChatServer::start("127.0.0.1:0", &redis);
    let mut ann = Chatter::connect(a.address);
    users(&ann.join("Ann"));
    let mut other = Chatter::connect(b.address);
    let refused = other.join("ann");
    assert_eq!(field(&refused, "type"), "error");
    assert_eq!(field(&refused, "reason"), "the name \"ann\" is taken");
    // Two clients, on two servers, asking for one name at the same moment:
    // Redis answers one of them first, and the other is refused.
    let mut on_a = Chatter::connect(a.address);
    let mut on_b = Chatter::connect(b.address);
    on_a.send(r#"{"type":"join","name":"zed"}"#);
    on_b.send(r#"{"type":"join","name":"zed"}"#);
    let answers = [on_a.next(), on_b.next()];
    let kinds: Vec<&str> = answers.iter().map(|answer| field(answer, "type")).collect();
    assert!(
        kinds == ["welcome", "error"] || kinds == ["error", "welcome"],
        "{kinds:?}"
    );
}

/// A join waits for Redis's answer; a message sent right behind it (in
/// the same write, even) waits with it, and comes after the welcome.
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn a_message_right_behind_a_join_waits_for_the_welcome() {
    let redis = RedisServer::start();
    let a = ChatServer::start("127.0.0.1:0", &redis);
    let mut eager = Chatter::connect(a.address);
    eager.send(r#"{"type":"join","name":"eager"}"#);
    eager.say("first words");
    assert_eq!(users(&eager.next()), ["eager"]);
    assert_eq!(field(&eager.next(), "text"), "first words");
}
// ANCHOR_END: test_names

// ANCHOR: test_shared_port
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn two_servers_share_one_port() {
    let redis = RedisServer::start();
    let a = ChatServer::start("127.0.0.1:0", &redis);
    let b = ChatServer::start(&a.address.to_string(), &redis);
    assert_eq!(a.address, b.address);
    let mut chatters: Vec<Chatter> = (0..20)
        .map(|index| {
            let mut chatter = Chatter::connect(a.address);
            users(&chatter.join(&format!("c{index}")));
            chatter
        })
        .collect();
    // The log comes a few milliseconds late.
    let start = Instant::now();
    while a.log_count("handshake done") + b.log_count("handshake done") < 20 {
        assert!(start.elapsed() < PATIENCE, "20 handshakes in the logs");
        thread::sleep(Duration::from_millis(20));
    }
    let on_a = a.log_count("handshake done");
    let on_b = b.log_count("handshake done");
    assert!(
        on_a > 0 && on_b > 0,
        "the kernel spread them: {on_a} and {on_b}"
    );
    // Each got the joins of those after it; then one message for all.
    for (index, chatter) in chatters.iter_mut().enumerate() {
        for later in index + 1..20 {
            expect_notice(chatter, "join", &format!("c{later}"));
        }
    }
    chatters[0].say("hello, both servers");
    for chatter in &mut chatters {
        assert_eq!(field(&chatter.next(), "text"), "hello, both servers");
    }
}
// ANCHOR_END: test_shared_port

// ANCHOR: test_redis_restart
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn the_chat_survives_redis_going_away() {
    let mut redis = RedisServer::start();
    let a = ChatServer::start("127.0.0.1:0", &redis);
    let b = ChatServer::start("127.0.0.1:0", &redis);
    let mut ann = Chatter::connect(a.address);
    users(&ann.join("ann"));
    let mut amy = Chatter::connect(a.address);
    users(&amy.join("amy"));
    expect_notice(&mut ann, "join", "amy");
    let mut bob = Chatter::connect(b.address);
    users(&bob.join("bob"));
    expect_notice(&mut ann, "join", "bob");
    expect_notice(&mut amy, "join", "bob");

    redis.stop();
    for chatter in [&mut ann, &mut amy, &mut bob] {
        let notice = chatter.next();
        assert_eq!(field(&notice, "type"), "notice");
        assert!(field(&notice, "text").contains("out of reach"));
    }
    // Each server still serves its own: Ann and Amy chat, Bob hears nothing.
    let ticks = (a.cpu_ticks(), b.cpu_ticks());
    ann.say("just us");
    assert_eq!(field(&ann.next(), "text"), "just us");
    assert_eq!(field(&amy.next(), "text"), "just us");
    let mut carl = Chatter::connect(b.address);
    let refused = carl.join("carl");
    assert!(field(&refused, "reason").contains("out of reach"));
    expect_silence(&mut bob, Duration::from_secs(2));
    // Trying again with a back-off is not spinning: a few ticks in 2 s.
    let used = (a.cpu_ticks() - ticks.0, b.cpu_ticks() - ticks.1);
    println!("CPU ticks in 2 s while Redis was away: {used:?}");
    assert!(
        used.0 <= 10 && used.1 <= 10,
        "CPU ticks while Redis was away: {used:?}"
    );

    redis.restart();
    let start = Instant::now();
    // The next attempt within 3.2 s (the back-off has doubled five times),
    // then five seconds up before the clients are told (`STEADY_AFTER`),
    // and up to a heartbeat more.
    for chatter in [&mut ann, &mut amy, &mut bob] {
        let notice = chatter.next_within(Duration::from_secs(15)).expect("back");
        assert!(field(&notice, "text").contains("in touch"));
    }
    println!("cross-server chat back after {:?}", start.elapsed());
    bob.say("back");
    for chatter in [&mut ann, &mut amy, &mut bob] {
        assert_eq!(field(&chatter.next(), "text"), "back");
    }
    // The names were claimed again in the new, empty Redis.
    let refused = carl.join("ann");
    assert_eq!(field(&refused, "reason"), "the name \"ann\" is taken");
    users(&carl.join("carl"));
    for chatter in [&mut ann, &mut amy, &mut bob] {
        expect_notice(chatter, "join", "carl");
        expect_silence(chatter, Duration::from_millis(300));
    }
}
// ANCHOR_END: test_redis_restart

// ANCHOR: test_sigkill
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn a_server_killed_frees_its_names_in_bounded_time() {
    let redis = RedisServer::start();
    let mut a = ChatServer::start("127.0.0.1:0", &redis);
    let b = ChatServer::start("127.0.0.1:0", &redis);
    let mut kay = Chatter::connect(a.address);
    users(&kay.join("kay"));
    let mut bob = Chatter::connect(b.address);
    assert_eq!(users(&bob.join("bob")), ["bob", "kay"]);
    a.kill();
    let killed = Instant::now();
    // Five seconds of silence, at most one heartbeat late, and a turn.
    let bound = Duration::from_secs(5) + Duration::from_secs(1) + Duration::from_millis(500);
    let notice = bob.next_within(bound).expect("a leave within the bound");
    assert_eq!(
        (field(&notice, "type"), field(&notice, "name")),
        ("leave", "kay")
    );
    println!("leave announced {:?} after the kill", killed.elapsed());
    // The name is free once its key expires: five seconds after its last
    // refresh, at most.
    let mut again = Chatter::connect(b.address);
    loop {
        let answer = again.join("kay");
        if field(&answer, "type") == "welcome" {
            break;
        }
        assert!(killed.elapsed() < bound, "kay still taken");
        thread::sleep(Duration::from_millis(100));
    }
    println!("name free {:?} after the kill", killed.elapsed());
    expect_notice(&mut bob, "join", "kay");
}
// ANCHOR_END: test_sigkill

// ANCHOR: test_sigterm
/// A server told to stop (SIGTERM, Ctrl-C) says goodbye across servers:
/// the others announce its users gone at once, not after their silence
/// times out, and the names are free at once, not after they expire.
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn a_server_stopped_with_sigterm_says_goodbye_across_servers() {
    let redis = RedisServer::start();
    let mut a = ChatServer::start("127.0.0.1:0", &redis);
    let b = ChatServer::start("127.0.0.1:0", &redis);
    let mut kay = Chatter::connect(a.address);
    users(&kay.join("kay"));
    let mut kim = Chatter::connect(a.address);
    users(&kim.join("kim"));
    expect_notice(&mut kay, "join", "kim");
    let mut bob = Chatter::connect(b.address);
    assert_eq!(users(&bob.join("bob")), ["bob", "kay", "kim"]);
    expect_notice(&mut kay, "join", "bob");
    expect_notice(&mut kim, "join", "bob");
    let stopped = Instant::now();
    a.terminate();
    // Well before the 5 s after which a silent server counts as dead.
    let at_once = Duration::from_secs(1);
    let mut gone = Vec::new();
    for _ in 0..2 {
        let notice = bob.next_within(at_once).expect("a leave, at once");
        assert_eq!(field(&notice, "type"), "leave", "{}", json::encode(&notice));
        gone.push(field(&notice, "name").to_string());
    }
    gone.sort();
    assert_eq!(gone, ["kay", "kim"]);
    println!("leaves announced {:?} after SIGTERM", stopped.elapsed());
    // Its own clients got stage 8's goodbye: close 1001.
    for chatter in [&mut kay, &mut kim] {
        assert!(chatter.next_within(PATIENCE).is_none());
        assert_eq!(chatter.closed_with, Some(1001), "going away");
    }
    // The names are free now: the first try succeeds.
    let mut again = Chatter::connect(b.address);
    assert_eq!(users(&again.join("kay")), ["bob", "kay"]);
    expect_notice(&mut bob, "join", "kay");
    let status = a.exit_within(PATIENCE).expect("the stopped server exits");
    assert!(status.success(), "{status}");
    assert_eq!(a.log_count("redis: saying goodbye for 2 users"), 1);
    // And nothing more: when the stopped server's silence times out, there
    // is nobody left of it to announce (the new Kay is Kay of server B).
    expect_silence(
        &mut bob,
        Duration::from_secs(6) + Duration::from_millis(500),
    );
}
// ANCHOR_END: test_sigterm

// ANCHOR: test_redis_stalls
/// Asks the Redis at `address` one command over a connection of its own,
/// and returns what it answered, as text, once it has stopped sending.
fn ask_redis(address: &str, parts: &[&str]) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream.write_all(&step_09::resp::command(parts)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer); // until it is quiet
    String::from_utf8_lossy(&answer).into_owned()
}

/// The process id of the Redis at `address`, as its `INFO` says.
fn redis_pid(address: &str) -> String {
    let info = ask_redis(address, &["INFO", "server"]);
    let line = info.lines().find(|line| line.starts_with("process_id:"));
    line.expect("INFO gives the process id")["process_id:".len()..].to_string()
}

fn signal(pid: &str, signal: &str) {
    let status = Command::new("kill").args([signal, pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// A Redis that stops answering but keeps its connections open (stopped
/// with SIGSTOP, as a frozen machine would be): the server notices within
/// a few seconds, says so, and refuses a join that was waiting for Redis
/// with a reason, rather than leaving it until the join timeout.
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn a_redis_that_stops_answering_is_noticed() {
    let redis = RedisServer::start();
    let pid = redis_pid(&redis.address());
    let a = ChatServer::start_with("127.0.0.1:0", &redis, &["--join-timeout", "20"]);
    let mut ann = Chatter::connect(a.address);
    users(&ann.join("ann"));
    signal(&pid, "-STOP");
    let stopped = Instant::now();
    let mut carl = Chatter::connect(a.address);
    carl.send(r#"{"type":"join","name":"carl"}"#);
    // Three seconds for an answer (`REPLY_TIMEOUT`), after a heartbeat.
    let refused = carl.next_within(Duration::from_secs(6));
    signal(&pid, "-CONT");
    let refused = refused.expect("an answer well before the join timeout");
    assert_eq!(
        field(&refused, "reason"),
        "cannot join now: lost contact with Redis"
    );
    println!("join refused {:?} after SIGSTOP", stopped.elapsed());
    let notice = ann.next();
    assert!(field(&notice, "text").contains("out of reach"));
    a.wait_for_log("redis: Redis stopped answering; trying again", 1);
}

/// A Redis that drops us again and again right after subscribing us (here
/// `CLIENT KILL TYPE pubsub` every 300 ms): the server backs off as if it
/// had never connected, and its clients are told once that the other
/// servers are out of reach, and once that they are back, when the link
/// has held for a while.
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn a_redis_that_keeps_dropping_us_is_not_a_storm() {
    let redis = RedisServer::start();
    let a = ChatServer::start("127.0.0.1:0", &redis);
    let mut ann = Chatter::connect(a.address);
    users(&ann.join("ann"));
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        ask_redis(&redis.address(), &["CLIENT", "KILL", "TYPE", "pubsub"]);
        thread::sleep(Duration::from_millis(100)); // 300 ms with the answer
    }
    let reconnects = a.log_count("the chat crosses servers") - 1;
    println!("{reconnects} reconnects in 4 s of drops");
    // Waits of 0.1, 0.2, 0.4, 0.8, 1.6 s at most, less jitter: 6 tries at
    // most. Starting again from 0.1 s at each drop would be a dozen.
    assert!(reconnects <= 7, "{reconnects} reconnects in 4 s");
    let notice = ann.next();
    assert!(field(&notice, "text").contains("out of reach"));
    let back = ann.next_within(Duration::from_secs(12)).expect("back");
    assert!(
        field(&back, "text").contains("in touch"),
        "{}",
        json::encode(&back)
    );
    expect_silence(&mut ann, Duration::from_millis(300));
}
// ANCHOR_END: test_redis_stalls

// ANCHOR: test_stage_8
/// Stage 8's rules hold on a server with `--redis`: a silent client is
/// pinged, then let go (and the other servers hear that it left); the
/// limits are each server's own; a page from another site is refused.
#[test]
#[ignore = "needs redis-server: apt-get install redis-server, then cargo test -p ws-tests --test redis -- --ignored"]
fn stage_8s_rules_hold_with_redis() {
    let redis = RedisServer::start();
    let flags = ["--ping-interval", "0.3", "--idle-timeout", "0.5"];
    let a = ChatServer::start_with("127.0.0.1:0", &redis, &flags);
    let limited = ["--max-connections", "1"];
    let b = ChatServer::start_with("127.0.0.1:0", &redis, &limited);
    let mut bob = Chatter::connect(b.address);
    users(&bob.join("bob"));
    // B holds one connection: the second is told to come back later, and
    // A, with limits of its own, still takes newcomers.
    let refused = ws_tests::http(b.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    refused.expect_status(503, "B holds one connection, at most");
    let mut quiet = Chatter::connect(a.address);
    assert_eq!(users(&quiet.join("quiet")), ["bob", "quiet"]);
    expect_notice(&mut bob, "join", "quiet");
    // Quiet never answers: pinged after 0.3 s, gone 0.5 s later.
    assert!(quiet.next_within(PATIENCE).is_none(), "disconnected");
    assert!(quiet.pings >= 1, "pinged first");
    expect_notice(&mut bob, "leave", "quiet");
    // The Origin check, on A.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Origin: http://elsewhere.example\r\n\r\n",
        a.address
    );
    let forbidden = ws_tests::http(a.address, request.as_bytes());
    forbidden.expect_status(403, "a page of another site");
}
// ANCHOR_END: test_stage_8

// ANCHOR: test_no_redis
/// Redis is not there at all (nothing listens on its port): the server
/// starts anyway, serves its page, keeps trying with a back-off without
/// spinning, and refuses joins, saying why. No `redis-server` needed.
#[test]
fn a_server_whose_redis_is_not_there_serves_and_says_so() {
    let nowhere = format!("127.0.0.1:{}", free_port());
    let server = ChatServer::spawn(&["127.0.0.1:0", "--redis", &nowhere], &[]);
    server.wait_for_log("redis: cannot connect", 1);
    let page = ws_tests::http(server.address, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    page.expect_status(200, "the page");
    let mut carl = Chatter::connect(server.address);
    let refused = carl.join("carl");
    assert_eq!(field(&refused, "type"), "error");
    assert_eq!(
        field(&refused, "reason"),
        "the other servers are out of reach: try again in a moment"
    );
    let ticks = server.cpu_ticks();
    thread::sleep(Duration::from_secs(2));
    let used = server.cpu_ticks() - ticks;
    assert!(used <= 10, "CPU ticks in 2 s without Redis: {used}");
    // 100 ms, then twice as long each time, less up to half (jitter): the
    // attempts in 2 s are few.
    let attempts = server.log_count("redis: cannot connect");
    assert!((2..=8).contains(&attempts), "{attempts} attempts");
}

/// Without `--redis`, a second server on the same port fails to start, as
/// stage 8's does: it would be a second chat, which nobody on the first
/// would ever meet. With `--redis`, the second shares the port.
#[test]
fn only_servers_with_redis_share_a_port() {
    let nowhere = format!("127.0.0.1:{}", free_port());
    let first = ChatServer::spawn(&["127.0.0.1:0"], &[]);
    let taken = first.address.to_string();
    let second = Command::new(ws_tests::program::binary("step-09"))
        .arg(&taken)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!second.status.success());
    let error = String::from_utf8_lossy(&second.stderr);
    assert!(error.contains("cannot listen on"), "{error}");
    let shared = ChatServer::spawn(&["127.0.0.1:0", "--redis", &nowhere], &[]);
    let shared_too = ChatServer::spawn(&[&shared.address.to_string(), "--redis", &nowhere], &[]);
    assert_eq!(shared.address, shared_too.address);
}
// ANCHOR_END: test_no_redis
