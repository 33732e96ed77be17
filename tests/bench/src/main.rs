//! The benchmark of the chat stages: `cargo run --release -p bench`.
//!
//! It builds step-04, step-05, step-06 and a reference server (with
//! `cargo build --release`), then for each one in turn: starts its release
//! binary on an ephemeral port, runs the workloads below against it over
//! loopback (a fresh server for each workload), and stops it. At the end it
//! prints one Markdown table, a column per server, and the ratios between
//! them that the book's conclusions use.
//!
//! The reference is `reference/src/main.rs`: step-05's chat written with
//! tokio and tokio-tungstenite, the way most Rust developers would. It is a
//! package and a workspace of its own (`reference/Cargo.toml`), which the
//! bench builds only when it is one of the servers to measure, so that
//! nothing else in the repository ever compiles tokio.
//!
//! Arguments choose the servers and the workloads:
//!
//! ```text
//! cargo run --release -p bench -- step-06 tokio-tungstenite
//! cargo run --release -p bench -- --only connections step-06
//! cargo run --release -p bench -- --only idle,broadcast
//! ```
//!
//! The workloads (the name for `--only` comes first):
//!
//! - idle: 50 clients connected and silent; the server's CPU time over five
//!   seconds, read from /proc (Linux only), as a share of one core. The
//!   system counts CPU time in ticks of 10 ms: 0.0 % means less than 0.2 %.
//! - broadcast: N clients (50, 100, 200 and 1,000); one of them sends small
//!   messages, keeping at most WINDOW of them in flight; every client
//!   receives every message. Reports deliveries per second and the p50/p99
//!   time from send to delivery.
//! - paced: 10 clients; one sends a message every 20 ms, so that the server
//!   is idle (and maybe asleep) when each arrives. Reports p50/p99 latency:
//!   the cost of waking up.
//! - echo: one client sends a message of a given size (16 B, 4 KiB, 1 MiB)
//!   and waits for it to come back (with one client, broadcast is echo).
//!   Reports round trips per second and MB/s, or "refused (1009)" from a
//!   server that does not take messages that big.
//! - connections: 10,000 connections open at once, handshake only. Reports
//!   how much the server's resident memory grew per connection, its idle
//!   CPU with all of them connected, and the time a message takes from one
//!   new client to another while they are. The bench exits with status 1
//!   if a server fails to hold them all or to deliver that message.
//!
//! The load generator runs on the same machine as the server, so the
//! figures are for comparing servers with each other in one run, not
//! absolute truths: the conclusions use the ratios.

mod client;
mod server;
mod workloads;

use server::{REFERENCE, Server};
use std::collections::BTreeMap;
use std::time::Duration;
use workloads::{Broadcast, Connections, Echo, Protocol};

/// The servers measured when the command line names none.
const DEFAULT_SERVERS: [&str; 4] = ["step-04", "step-05", "step-06", REFERENCE];

/// The most broadcast messages on their way at once.
const WINDOW: u64 = 32;

const IDLE_CLIENTS: usize = 50;
const BROADCAST_CLIENTS: [usize; 4] = [50, 100, 200, 1000];
const BROADCAST_MESSAGES: u64 = 2000;
const ECHO_SIZES: [usize; 3] = [16, 4096, 1 << 20];
const IDLE_CONNECTIONS: usize = 10_000;

/// Open files the bench and each server need beyond one per connection:
/// a listening socket, a few clients, pipes, the standard streams.
const SPARE_FILES: usize = 100;

/// What the bench can ask of a server; see the top of this file.
#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Idle,
    Broadcast,
    Paced,
    Echo,
    Connections,
}

const WORKLOADS: [Workload; 5] = [
    Workload::Idle,
    Workload::Broadcast,
    Workload::Paced,
    Workload::Echo,
    Workload::Connections,
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Idle => "idle",
            Workload::Broadcast => "broadcast",
            Workload::Paced => "paced",
            Workload::Echo => "echo",
            Workload::Connections => "connections",
        }
    }
}

/// Everything measured on one server. A workload that did not run leaves
/// its field empty.
#[derive(Default)]
struct Results {
    idle_cpu: Option<f64>,
    broadcast: BTreeMap<usize, Result<Broadcast, String>>,
    paced: Option<Result<Broadcast, String>>,
    echo: BTreeMap<usize, Echo>,
    connections: Option<Result<Connections, String>>,
}

fn main() {
    let (servers, mut workloads) = parse_arguments();
    let open_files = server::raise_open_file_limit();
    let needed = IDLE_CONNECTIONS + SPARE_FILES;
    let asked_for_connections = std::env::args().any(|argument| argument == "--only");
    if workloads.contains(&Workload::Connections)
        && open_files < needed as u64
        && !asked_for_connections
    {
        // A full run goes on without it: the other workloads need few files.
        eprintln!(
            "Leaving out the connections workload: it needs {needed} open files, and this \
             shell allows at most {open_files} (`ulimit -Hn`; see chapter 6 of the book)."
        );
        workloads.retain(|workload| *workload != Workload::Connections);
    }
    if workloads.contains(&Workload::Connections) && open_files < needed as u64 {
        eprintln!(
            "The connections workload needs {needed} open files, in the bench and in each \
             server, but this shell allows at most {open_files}. Raise the limit \
             (`ulimit -n {needed}`, which may need root to raise the hard limit) or leave \
             the workload out (--only idle,broadcast,paced,echo)."
        );
        std::process::exit(2);
    }
    server::build(&servers);

    let mut all = Vec::new();
    for name in &servers {
        all.push((name.clone(), run_workloads(name, &workloads)));
    }
    print_table(&all);
    print_ratios(&all);

    let failed = all
        .iter()
        .any(|(_, results)| matches!(results.connections, Some(Err(_))));
    if failed {
        let count = thousands(IDLE_CONNECTIONS);
        eprintln!("a server failed to hold {count} connections, or to serve while it held them");
        std::process::exit(1);
    }
}

/// `[--only WORKLOAD,...] [SERVER ...]`: the servers and the workloads to
/// run, every one of each by default.
fn parse_arguments() -> (Vec<String>, Vec<Workload>) {
    let mut servers = Vec::new();
    let mut workloads = WORKLOADS.to_vec();
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == "--only" {
            let names = arguments.next().unwrap_or_else(|| usage());
            workloads = names.split(',').map(parse_workload).collect();
        } else if argument.starts_with('-') {
            usage();
        } else {
            servers.push(argument);
        }
    }
    if servers.is_empty() {
        servers = DEFAULT_SERVERS.map(String::from).to_vec();
    }
    (servers, workloads)
}

fn parse_workload(name: &str) -> Workload {
    let found = WORKLOADS
        .into_iter()
        .find(|workload| workload.name() == name);
    found.unwrap_or_else(|| usage())
}

fn usage() -> ! {
    let workloads: Vec<&str> = WORKLOADS.map(Workload::name).to_vec();
    eprintln!("usage: cargo run --release -p bench -- [--only WORKLOAD,...] [SERVER ...]");
    eprintln!("  servers: any stage from step-03 on, or {REFERENCE}");
    eprintln!("    (default: {})", DEFAULT_SERVERS.join(" "));
    eprintln!("  workloads: {} (default: all)", workloads.join(", "));
    std::process::exit(2);
}

/// Runs the chosen workloads against one server, each against a server
/// of its own, and says each result as it comes.
fn run_workloads(name: &str, workloads: &[Workload]) -> Results {
    let protocol = workloads::protocol_of(name);
    let log = |workload: &str, result: &str| eprintln!("{name}: {workload}: {result}");
    let mut results = Results::default();
    for &workload in workloads {
        match workload {
            Workload::Idle => {
                let server = Server::start(name);
                let cpu = workloads::idle_cpu(&server, protocol, IDLE_CLIENTS);
                log(&idle_label(), &percent(cpu));
                results.idle_cpu = Some(cpu);
            }
            Workload::Broadcast => {
                for clients in BROADCAST_CLIENTS {
                    let result = broadcast(name, protocol, clients, None);
                    log(&broadcast_label(clients), &broadcast_cell(&result));
                    results.broadcast.insert(clients, result);
                }
            }
            Workload::Paced => {
                let result = broadcast(name, protocol, 10, Some(Duration::from_millis(20)));
                log(PACED_LABEL, &paced_cell(&result));
                results.paced = Some(result);
            }
            Workload::Echo => {
                let server = Server::start(name);
                for size in ECHO_SIZES {
                    let result = workloads::echo(server.address, protocol, size);
                    log(&echo_label(size), &echo_cell(&result));
                    results.echo.insert(size, result);
                }
            }
            Workload::Connections => {
                let server = Server::start(name);
                let result = workloads::idle_connections(&server, protocol, IDLE_CONNECTIONS);
                for (label, cell) in connections_labels().iter().zip(connections_cells(&result)) {
                    log(label, &cell);
                }
                results.connections = Some(result);
            }
        }
    }
    results
}

/// A broadcast against a fresh server: as fast as the window allows, or
/// one message per `pace` (and then only 200 of them, one at a time).
fn broadcast(
    name: &str,
    protocol: Protocol,
    clients: usize,
    pace: Option<Duration>,
) -> Result<Broadcast, String> {
    let server = Server::start(name);
    let (messages, window) = match pace {
        None => (BROADCAST_MESSAGES, WINDOW),
        Some(_) => (200, 1),
    };
    workloads::broadcast(server.address, protocol, clients, messages, window, pace)
}

// ------------------------------------------------------------- the table

const PACED_LABEL: &str = "paced, 10 clients, a message every 20 ms";

fn idle_label() -> String {
    format!("idle CPU, {IDLE_CLIENTS} clients")
}

fn broadcast_label(clients: usize) -> String {
    format!("broadcast, {} clients", thousands(clients))
}

fn echo_label(size: usize) -> String {
    format!("echo, {} messages", human_size(size))
}

/// The rows of the connections workload: memory, idle CPU, a message.
fn connections_labels() -> [String; 3] {
    let count = thousands(IDLE_CONNECTIONS);
    [
        format!("{count} idle connections: memory per connection"),
        format!("{count} idle connections: idle CPU"),
        format!("{count} idle connections: a message between two new clients"),
    ]
}

fn connections_cells(result: &Result<Connections, String>) -> [String; 3] {
    match result {
        Ok(connections) => [
            format!("{:.1} KiB", connections.kib_per_connection),
            percent(connections.idle_cpu),
            human_duration(connections.round_trip),
        ],
        Err(error) => [format!("failed: {error}"), "—".into(), "—".into()],
    }
}

fn percent(cpu: f64) -> String {
    format!("{cpu:.1} % of a core")
}

fn broadcast_cell(result: &Result<Broadcast, String>) -> String {
    match result {
        Ok(broadcast) => format!(
            "{} deliveries/s, p50 {}, p99 {}",
            thousands(broadcast.deliveries_per_second.round() as usize),
            human_duration(broadcast.p50),
            human_duration(broadcast.p99),
        ),
        Err(error) => format!("failed: {error}"),
    }
}

fn paced_cell(result: &Result<Broadcast, String>) -> String {
    match result {
        Ok(broadcast) => format!(
            "p50 {}, p99 {}",
            human_duration(broadcast.p50),
            human_duration(broadcast.p99),
        ),
        Err(error) => format!("failed: {error}"),
    }
}

fn echo_cell(result: &Echo) -> String {
    match result {
        Echo::Done {
            round_trips_per_second,
            megabytes_per_second,
        } => format!(
            "{} round trips/s, {megabytes_per_second:.1} MB/s each way",
            thousands(round_trips_per_second.round() as usize)
        ),
        Echo::Refused(Some(code)) => format!("refused ({code})"),
        Echo::Refused(None) => "refused (closed)".to_string(),
        Echo::Failed(error) => format!("failed: {error}"),
    }
}

/// The table's rows, each with a cell per server (`None` where that
/// workload did not run on that server).
fn table_rows(all: &[(String, Results)]) -> Vec<(String, Vec<Option<String>>)> {
    let mut rows = Vec::new();
    let mut row = |label: String, cell: &dyn Fn(&Results) -> Option<String>| {
        let cells = all.iter().map(|(_, results)| cell(results)).collect();
        rows.push((label, cells));
    };
    row(idle_label(), &|results| results.idle_cpu.map(percent));
    for clients in BROADCAST_CLIENTS {
        row(broadcast_label(clients), &|results| {
            results.broadcast.get(&clients).map(broadcast_cell)
        });
    }
    row(PACED_LABEL.to_string(), &|results| {
        results.paced.as_ref().map(paced_cell)
    });
    for size in ECHO_SIZES {
        row(echo_label(size), &|results| {
            results.echo.get(&size).map(echo_cell)
        });
    }
    for (index, label) in connections_labels().into_iter().enumerate() {
        row(label, &|results| {
            let connections = results.connections.as_ref()?;
            Some(connections_cells(connections)[index].clone())
        });
    }
    rows
}

fn print_table(all: &[(String, Results)]) {
    let names: Vec<&str> = all.iter().map(|(name, _)| name.as_str()).collect();
    println!("\n| workload | {} |", names.join(" | "));
    println!("|---|{}", "---|".repeat(names.len()));
    for (label, cells) in table_rows(all) {
        // A workload that ran on no server has no row.
        if cells.iter().all(Option::is_none) {
            continue;
        }
        let cells: Vec<String> = cells
            .into_iter()
            .map(|cell| cell.unwrap_or("—".to_string()))
            .collect();
        println!("| {label} | {} |", cells.join(" | "));
    }
}

// ------------------------------------------------------------ the ratios

/// The ratios the conclusions quote: step-06 against step-05, and step-06
/// against the reference, each from this run's figures.
fn print_ratios(all: &[(String, Results)]) {
    let find = |name: &str| {
        let found = all.iter().find(|(server, _)| server == name);
        found.map(|(_, results)| results)
    };
    let step_06 = find("step-06");
    let mut lines = Vec::new();
    if let (Some(new), Some(old)) = (step_06, find("step-05")) {
        let pair = ("step-06", "step-05");
        let sizes = BROADCAST_CLIENTS;
        lines.push(ratio_line("idle CPU", pair, &idle_cases(new, old)));
        lines.push(ratio_line(
            "broadcast deliveries/s",
            pair,
            &rates(new, old, &sizes),
        ));
        lines.push(ratio_line(
            "broadcast p50 latency",
            pair,
            &p50s(new, old, &sizes),
        ));
    }
    if let (Some(new), Some(reference)) = (step_06, find(REFERENCE)) {
        let pair = ("step-06", REFERENCE);
        let sizes = [50, 200];
        lines.push(ratio_line(
            "broadcast deliveries/s",
            pair,
            &rates(new, reference, &sizes),
        ));
        lines.push(ratio_line(
            "broadcast p50 latency",
            pair,
            &p50s(new, reference, &sizes),
        ));
        lines.push(ratio_line("memory", pair, &memory_cases(new, reference)));
    }
    let lines: Vec<String> = lines.into_iter().flatten().collect();
    if lines.is_empty() {
        return;
    }
    println!("\n### Ratios\n");
    println!("Each is the first server's figure divided by the second's, in this run.\n");
    for line in lines {
        println!("- {line}");
    }
}

/// One case of a comparison: what it is, and the figure on each server
/// (`None` where the workload did not run, or failed).
type Case = (String, Option<f64>, Option<f64>);

/// One measure compared between two servers, in several cases:
/// `broadcast deliveries/s, step-06 / step-05: 1.10 (50 clients), ...`.
/// `None` if no case has both figures.
fn ratio_line(measure: &str, (first, second): (&str, &str), cases: &[Case]) -> Option<String> {
    let ratios: Vec<String> = cases
        .iter()
        .filter_map(|(case, a, b)| Some(format!("{} ({case})", ratio((*a)?, (*b)?))))
        .collect();
    if ratios.is_empty() {
        return None;
    }
    Some(format!(
        "{measure}, {first} / {second}: {}",
        ratios.join(", ")
    ))
}

/// `a / b`, written so that it reads at a glance: 1.42, 0.53, 1/230, 12.
fn ratio(a: f64, b: f64) -> String {
    let ratio = a / b;
    if b == 0.0 {
        "— (divided by zero)".to_string()
    } else if ratio == 0.0 {
        "0".to_string()
    } else if ratio < 0.1 {
        format!("1/{:.0}", 1.0 / ratio)
    } else if ratio < 10.0 {
        format!("{ratio:.2}")
    } else {
        format!("{ratio:.0}")
    }
}

/// Idle CPU with 50 clients, and with 10,000 idle connections.
fn idle_cases(a: &Results, b: &Results) -> Vec<Case> {
    let with_connections = |results: &Results| Some(connections(results)?.idle_cpu);
    vec![
        (format!("{IDLE_CLIENTS} clients"), a.idle_cpu, b.idle_cpu),
        (
            format!("{} idle connections", thousands(IDLE_CONNECTIONS)),
            with_connections(a),
            with_connections(b),
        ),
    ]
}

/// Memory per connection, with 10,000 idle connections.
fn memory_cases(a: &Results, b: &Results) -> Vec<Case> {
    let memory = |results: &Results| Some(connections(results)?.kib_per_connection);
    let case = format!(
        "per connection, {} idle connections",
        thousands(IDLE_CONNECTIONS)
    );
    vec![(case, memory(a), memory(b))]
}

fn connections(results: &Results) -> Option<&Connections> {
    results.connections.as_ref()?.as_ref().ok()
}

/// Each broadcast size's deliveries per second, on both servers.
fn rates(a: &Results, b: &Results, sizes: &[usize]) -> Vec<Case> {
    broadcast_cases(a, b, sizes, |broadcast| broadcast.deliveries_per_second)
}

/// Each broadcast size's median latency, on both servers.
fn p50s(a: &Results, b: &Results, sizes: &[usize]) -> Vec<Case> {
    broadcast_cases(a, b, sizes, |broadcast| broadcast.p50.as_secs_f64())
}

fn broadcast_cases(
    a: &Results,
    b: &Results,
    sizes: &[usize],
    figure: fn(&Broadcast) -> f64,
) -> Vec<Case> {
    let of = |results: &Results, clients| {
        let broadcast = results.broadcast.get(&clients)?.as_ref().ok()?;
        Some(figure(broadcast))
    };
    sizes
        .iter()
        .map(|&clients| {
            let case = format!("{} clients", thousands(clients));
            (case, of(a, clients), of(b, clients))
        })
        .collect()
}

// ------------------------------------------------------------- formatting

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

/// 1234567 as "1,234,567".
fn thousands(number: usize) -> String {
    let digits = number.to_string();
    let mut grouped = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    grouped
}
