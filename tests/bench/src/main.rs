//! The benchmark for the chat stages: `cargo run --release -p bench -- step-04`.
//!
//! For each stage named on the command line it builds nothing: it starts the
//! stage's release binary (`target/release/step-04`, built by
//! `cargo build --release -p step-04`) on an ephemeral port, runs the
//! workloads below against it over loopback, stops it, and prints one
//! Markdown table with every result.
//!
//! - idle CPU: 50 clients connected and silent; the server's CPU time over
//!   five seconds, read from /proc (Linux only), as a share of one core.
//! - broadcast: N clients; one of them sends small messages, keeping at most
//!   WINDOW of them in flight; every client receives every message. Reports
//!   deliveries per second and the p50/p99 time from send to delivery.
//! - paced: 10 clients; one sends a message every 20 ms, so that the server
//!   is idle (and maybe asleep) when each arrives. Reports p50/p99 latency:
//!   the cost of waking up.
//! - echo: one client sends a message of a given size and waits for it to
//!   come back (with one client, broadcast is echo). Reports round trips per
//!   second and MB/s.
//!
//! The load generator runs on the same two cores as the server, so the
//! figures are for comparing stages with each other, not absolute truths.

mod client;

use client::{Client, Incoming};
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the stage expects chat messages to look.
#[derive(Clone, Copy, PartialEq)]
enum Protocol {
    /// Stages 3-4: a text message goes out exactly as it came in.
    Plain,
    /// Stage 5 on: JSON, with a join first and a `from` field on the way out.
    Json,
}

fn protocol_of(step: &str) -> Protocol {
    match step {
        step if step.starts_with("step-03") || step.starts_with("step-04") => Protocol::Plain,
        _ => Protocol::Json,
    }
}

const WINDOW: u64 = 32;

fn main() {
    let steps: Vec<String> = std::env::args().skip(1).collect();
    if steps.is_empty() {
        eprintln!("usage: cargo run --release -p bench -- step-04 [step-05 ...]");
        eprintln!("(build the stages first: cargo build --release -p step-04)");
        std::process::exit(2);
    }
    let mut rows = Vec::new();
    for step in &steps {
        rows.extend(run_stage(step));
    }
    println!("\n| stage | workload | result |");
    println!("|---|---|---|");
    for (step, workload, result) in rows {
        println!("| {step} | {workload} | {result} |");
    }
}

fn run_stage(step: &str) -> Vec<(String, String, String)> {
    let protocol = protocol_of(step);
    let mut rows = Vec::new();
    let mut row = |workload: String, result: String| {
        eprintln!("{step}: {workload}: {result}");
        rows.push((step.to_string(), workload, result));
    };

    let server = Server::start(step);
    row(
        "idle CPU, 50 clients".into(),
        format!("{:.1} % of a core", idle_cpu(&server, protocol, 50)),
    );
    drop(server);

    for clients in [100, 1000] {
        let server = Server::start(step);
        let result = broadcast(server.address, protocol, clients, 2000, WINDOW, None);
        row(format!("broadcast, {clients} clients"), result);
    }

    let server = Server::start(step);
    let pace = Some(Duration::from_millis(20));
    let result = broadcast(server.address, protocol, 10, 200, 1, pace);
    row("paced, 10 clients, a message every 20 ms".into(), result);

    let server = Server::start(step);
    for size in [16, 4096, 1 << 20] {
        row(
            format!("echo, {} messages", human_size(size)),
            echo(server.address, protocol, size),
        );
    }
    rows
}

/// A stage's server, running as a child process until dropped.
struct Server {
    child: Child,
    address: SocketAddr,
}

impl Server {
    fn start(step: &str) -> Server {
        let target = std::env::var("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        let binary = target.join("release").join(step);
        let mut child = Command::new(&binary)
            .arg("127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|error| {
                panic!(
                    "cannot start {}: {error} (run: cargo build --release -p {step})",
                    binary.display()
                )
            });
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().and_then(|line| line.ok()).unwrap_or_default();
        let address = first
            .rsplit("http://")
            .next()
            .and_then(|address| address.trim().parse().ok())
            .unwrap_or_else(|| panic!("{step} did not say where it listens: {first:?}"));
        // Keep reading the server's log so that it never blocks on a full pipe.
        thread::spawn(move || for _ in lines {});
        Server { child, address }
    }

    /// User plus system CPU time the server has used so far.
    fn cpu_time(&self) -> Duration {
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

/// Connects a client and, for the JSON stages, joins under `name`.
fn connect(address: SocketAddr, protocol: Protocol, name: &str) -> Client {
    let mut client = Client::connect(address).expect("connect");
    if protocol == Protocol::Json {
        client
            .send_text(&format!(r#"{{"type":"join","name":"{name}"}}"#))
            .unwrap();
        // Wait for our welcome, so that we are a member before anyone talks.
        loop {
            match client.receive().expect("welcome") {
                Incoming::Text(text) if text.starts_with(br#"{"type":"welcome""#) => break,
                _ => {}
            }
        }
    }
    client
}

fn chat_message(protocol: Protocol, text: &str) -> String {
    match protocol {
        Protocol::Plain => text.to_string(),
        Protocol::Json => format!(r#"{{"type":"message","text":"{text}"}}"#),
    }
}

/// The text we sent, found again in what the server delivered.
fn chat_text(protocol: Protocol, delivered: &[u8]) -> Option<&str> {
    let delivered = std::str::from_utf8(delivered).ok()?;
    match protocol {
        Protocol::Plain => Some(delivered),
        Protocol::Json => {
            if !delivered.starts_with(r#"{"type":"message""#) {
                return None; // a join or leave notice
            }
            let start = delivered.find(r#""text":""#)? + r#""text":""#.len();
            delivered[start..].strip_suffix("\"}")
        }
    }
}

fn idle_cpu(server: &Server, protocol: Protocol, clients: usize) -> f64 {
    let _clients: Vec<Client> = (0..clients)
        .map(|i| connect(server.address, protocol, &format!("idle{i}")))
        .collect();
    thread::sleep(Duration::from_secs(1));
    let before = server.cpu_time();
    let measured = Duration::from_secs(5);
    thread::sleep(measured);
    let used = server.cpu_time() - before;
    100.0 * used.as_secs_f64() / measured.as_secs_f64()
}

/// Client 0 sends `messages` messages, with at most `window` of them on
/// their way at once, and if `pace` is given, one per `pace` at most.
fn broadcast(
    address: SocketAddr,
    protocol: Protocol,
    clients: usize,
    messages: u64,
    window: u64,
    pace: Option<Duration>,
) -> String {
    let epoch = Instant::now();
    let connected: Vec<Client> = (0..clients)
        .map(|i| connect(address, protocol, &format!("user{i}")))
        .collect();
    // Client 0 sends; every client, client 0 too, receives every message.
    let mut receivers = Vec::new();
    let mut writers = Vec::new();
    for client in connected {
        receivers.push(client.reader);
        writers.push(client.writer);
    }
    let mut sender = writers.swap_remove(0);

    // Every receiver counts each message; the last one to get it completes it.
    let arrivals: Arc<Vec<AtomicU32>> =
        Arc::new((0..messages).map(|_| AtomicU32::new(0)).collect());
    let completed = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(clients * messages as usize)));
    let receiver_count = receivers.len() as u32;
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|mut client| {
            let (arrivals, completed, latencies) =
                (arrivals.clone(), completed.clone(), latencies.clone());
            thread::spawn(move || {
                let mut mine = Vec::with_capacity(messages as usize);
                let mut received = 0;
                while received < messages {
                    let Ok(Incoming::Text(text)) = client.receive() else {
                        break;
                    };
                    let Some((sequence, sent)) = chat_text(protocol, &text).and_then(parse_stamp)
                    else {
                        continue;
                    };
                    mine.push(epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
                    received += 1;
                    if arrivals[sequence as usize].fetch_add(1, Ordering::AcqRel) + 1
                        == receiver_count
                    {
                        completed.fetch_add(1, Ordering::AcqRel);
                    }
                }
                latencies.lock().unwrap().extend(mine);
            })
        })
        .collect();

    let started = Instant::now();
    for sequence in 0..messages {
        while sequence - completed.load(Ordering::Acquire) >= window {
            thread::sleep(Duration::from_micros(20));
        }
        if let Some(pace) = pace {
            thread::sleep(pace);
        }
        let stamp = format!("{sequence} {}", epoch.elapsed().as_nanos());
        sender.send_text(&chat_message(protocol, &stamp)).unwrap();
    }
    for handle in handles {
        handle.join().unwrap();
    }
    let elapsed = started.elapsed();
    let mut latencies = latencies.lock().unwrap();
    let deliveries = latencies.len();
    latencies.sort();
    format!(
        "{:.0} deliveries/s, p50 {}, p99 {}",
        deliveries as f64 / elapsed.as_secs_f64(),
        human_duration(percentile(&latencies, 50.0)),
        human_duration(percentile(&latencies, 99.0)),
    )
}

fn parse_stamp(text: &str) -> Option<(u64, u64)> {
    let (sequence, sent) = text.split_once(' ')?;
    Some((sequence.parse().ok()?, sent.parse().ok()?))
}

fn echo(address: SocketAddr, protocol: Protocol, size: usize) -> String {
    let mut client = connect(address, protocol, "echo");
    let text = "x".repeat(size);
    let message = chat_message(protocol, &text);
    let budget = Duration::from_secs(3);
    let started = Instant::now();
    let mut round_trips = 0u64;
    while started.elapsed() < budget {
        client.send_text(&message).unwrap();
        loop {
            if let Incoming::Text(reply) = client.receive().expect("echo")
                && chat_text(protocol, &reply).map(str::len) == Some(size)
            {
                break;
            }
        }
        round_trips += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    format!(
        "{:.0} round trips/s, {:.1} MB/s each way",
        round_trips as f64 / seconds,
        round_trips as f64 * size as f64 / seconds / 1e6
    )
}

fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * percent / 100.0).round() as usize;
    sorted[index]
}

fn human_duration(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{:.2} ms", micros / 1000.0)
    }
}

fn human_size(bytes: usize) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{} MiB", b >> 20),
        b if b >= 1 << 10 => format!("{} KiB", b >> 10),
        b => format!("{b} B"),
    }
}
