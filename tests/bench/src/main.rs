//! The benchmark of the chat stages: `cargo run --release -p bench`.
//!
//! It builds step-04 to step-07 and a reference server (with
//! `cargo build --release`), then for each server in turn: starts it on an
//! ephemeral port, runs the workloads below against it over loopback (a
//! fresh server for each workload), and stops it. At the end it prints one
//! Markdown table, a column per server, and the ratios between them that
//! the book's conclusions use, and draws the chart of chapter 7.
//!
//! The reference is `reference/src/main.rs`: step-05's chat written with
//! tokio and tokio-tungstenite, the way most Rust developers would. It is a
//! package and a workspace of its own (`reference/Cargo.toml`), which the
//! bench builds only when it is one of the servers to measure, so that
//! nothing else in the repository ever compiles tokio. The second peer,
//! `node-ws`, is the same chat on Node.js with the `ws` package
//! (`node/server.js`), as a reader of this book would write it: the bench
//! runs `npm ci` in `node/` the first time it measures it.
//!
//! Arguments choose the servers and the workloads:
//!
//! ```text
//! cargo run --release -p bench -- step-06 tokio-tungstenite
//! cargo run --release -p bench -- --only connections step-06
//! cargo run --release -p bench -- --only idle,broadcast
//! cargo run --release -p bench -- --only scaling --chart book/src/images/idle-connections.svg
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
//!   and waits for it to come back (with one client, broadcast is echo),
//!   for a second, five times over, each time with a new client. Reports
//!   the median round trips per second and MB/s, and the range of the
//!   five, or "refused (1009)" from a server that does not take messages
//!   that big. (On a shared machine one second can be four times another.)
//! - connections: 10,000 connections open at once, handshake only. Reports
//!   how much the server's resident memory grew per connection, its idle
//!   CPU with all of them connected, and the time a message takes from one
//!   new client to another while they are (the median of 21). The bench
//!   exits with status 1 if a stage fails to hold them all or to deliver
//!   the messages.
//! - scaling: the same with 1,000 and 100,000 connections (and 10,000 if
//!   the connections workload does not run), then a chart of the message's
//!   time against the number of connections, for every server, written as
//!   SVG to `--chart FILE` (default `target/bench/idle-connections.svg`).
//!   The connections come from 127.0.0.1, 127.0.0.2, ... (10,000 from
//!   each: one address has 28,232 ports to connect from), and need 100,100
//!   open files in the bench and in the server: the bench raises its limit
//!   (the hard limit too, when it may: root with CAP_SYS_RESOURCE), and
//!   when it may not, says so and measures the most it may instead (19,000
//!   with a hard limit of 20,000). It stops a server that would leave the
//!   system less than 3 GiB of memory.
//!
//! The load generator runs on the same machine as the server, so the
//! figures are for comparing servers with each other in one run, not
//! absolute truths: the conclusions use the ratios.

mod chart;
mod client;
mod server;
mod workloads;

use server::{NODE, REFERENCE, Server};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;
use workloads::{Broadcast, Connections, Echo, Protocol};

/// The servers measured when the command line names none.
const DEFAULT_SERVERS: [&str; 6] = ["step-04", "step-05", "step-06", "step-07", REFERENCE, NODE];

/// The most broadcast messages on their way at once.
const WINDOW: u64 = 32;

const IDLE_CLIENTS: usize = 50;
const BROADCAST_CLIENTS: [usize; 4] = [50, 100, 200, 1000];
const BROADCAST_MESSAGES: u64 = 2000;
const ECHO_SIZES: [usize; 3] = [16, 4096, 1 << 20];
const ECHO_RUNS: usize = 5;
const ECHO_RUN: Duration = Duration::from_secs(1);
const IDLE_CONNECTIONS: usize = 10_000;
const SCALING_CONNECTIONS: [usize; 3] = [1_000, 10_000, 100_000];

/// Where the chart goes when `--chart` does not say.
const DEFAULT_CHART: &str = "target/bench/idle-connections.svg";

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
    Scaling,
}

const WORKLOADS: [Workload; 6] = [
    Workload::Idle,
    Workload::Broadcast,
    Workload::Paced,
    Workload::Echo,
    Workload::Connections,
    Workload::Scaling,
];

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Idle => "idle",
            Workload::Broadcast => "broadcast",
            Workload::Paced => "paced",
            Workload::Echo => "echo",
            Workload::Connections => "connections",
            Workload::Scaling => "scaling",
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
    /// Each size's runs.
    echo: BTreeMap<usize, Vec<Echo>>,
    /// By the number of connections held.
    connections: BTreeMap<usize, Result<Connections, String>>,
}

/// What the command line asked for.
struct Arguments {
    servers: Vec<String>,
    workloads: Vec<Workload>,
    chart: PathBuf,
}

fn main() {
    let Arguments {
        servers,
        mut workloads,
        chart,
    } = parse_arguments();
    let most = SCALING_CONNECTIONS.iter().max().unwrap() + SPARE_FILES;
    let open_files = server::raise_open_file_limit(most as u64);
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
    // The scaling workload: every count the connections workload does not
    // measure, and that the open files allow.
    let mut scaling: Vec<usize> = SCALING_CONNECTIONS.to_vec();
    if workloads.contains(&Workload::Connections) {
        scaling.retain(|&count| count != IDLE_CONNECTIONS);
    }
    if workloads.contains(&Workload::Scaling) {
        // What does not fit in the open files is left out, and the most
        // that fits (in whole thousands) measured instead.
        let most = (open_files as usize).saturating_sub(SPARE_FILES) / 1000 * 1000;
        for count in &mut scaling {
            if *count > most {
                eprintln!(
                    "Leaving out {} connections: they need {} open files, and this process \
                     may have at most {open_files} and may not raise its hard limit (that \
                     takes root, with CAP_SYS_RESOURCE). Measuring {} instead.",
                    thousands(*count),
                    thousands(*count + SPARE_FILES),
                    thousands(most)
                );
                *count = most;
            }
        }
        scaling.dedup();
        scaling.retain(|&count| {
            count > 0 && !(workloads.contains(&Workload::Connections) && count == IDLE_CONNECTIONS)
        });
    }
    server::build(&servers);

    let mut all = Vec::new();
    for name in &servers {
        all.push((name.clone(), run_workloads(name, &workloads, &scaling)));
    }
    print_table(&all);
    print_ratios(&all);
    if workloads.contains(&Workload::Scaling) {
        write_chart(&all, &chart);
    }

    let failed: Vec<String> = all
        .iter()
        .filter(|(name, _)| name.starts_with("step-"))
        .flat_map(|(name, results)| {
            let failures = results
                .connections
                .iter()
                .filter(|(_, result)| result.is_err());
            failures.map(move |(count, _)| format!("{name} with {}", thousands(*count)))
        })
        .collect();
    if !failed.is_empty() {
        eprintln!(
            "a stage failed to hold its connections, or to serve while it held them: {}",
            failed.join(", ")
        );
        std::process::exit(1);
    }
}

/// `[--only WORKLOAD,...] [--chart FILE] [SERVER ...]`: the servers and the
/// workloads to run, every one of each by default, and where the chart goes.
fn parse_arguments() -> Arguments {
    let mut servers = Vec::new();
    let mut workloads = WORKLOADS.to_vec();
    let mut chart = PathBuf::from(DEFAULT_CHART);
    let mut arguments = std::env::args().skip(1);
    while let Some(argument) = arguments.next() {
        if argument == "--only" {
            let names = arguments.next().unwrap_or_else(|| usage());
            workloads = names.split(',').map(parse_workload).collect();
        } else if argument == "--chart" {
            chart = PathBuf::from(arguments.next().unwrap_or_else(|| usage()));
        } else if argument.starts_with('-') {
            usage();
        } else {
            servers.push(argument);
        }
    }
    if servers.is_empty() {
        servers = DEFAULT_SERVERS.map(String::from).to_vec();
    }
    Arguments {
        servers,
        workloads,
        chart,
    }
}

fn parse_workload(name: &str) -> Workload {
    let found = WORKLOADS
        .into_iter()
        .find(|workload| workload.name() == name);
    found.unwrap_or_else(|| usage())
}

fn usage() -> ! {
    let workloads: Vec<&str> = WORKLOADS.map(Workload::name).to_vec();
    eprintln!(
        "usage: cargo run --release -p bench -- [--only WORKLOAD,...] [--chart FILE] [SERVER ...]"
    );
    eprintln!("  servers: any stage from step-03 on, {REFERENCE} or {NODE}");
    eprintln!("    (default: {})", DEFAULT_SERVERS.join(" "));
    eprintln!("  workloads: {} (default: all)", workloads.join(", "));
    std::process::exit(2);
}

/// Runs the chosen workloads against one server, each against a server
/// of its own, and says each result as it comes. `scaling` is the numbers
/// of connections the scaling workload holds.
fn run_workloads(name: &str, workloads: &[Workload], scaling: &[usize]) -> Results {
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
                    let mut runs = Vec::new();
                    for _ in 0..ECHO_RUNS {
                        let run = workloads::echo(server.address, protocol, size, ECHO_RUN);
                        let done = matches!(run, Echo::Done { .. });
                        runs.push(run);
                        if !done {
                            break; // refused or failed: once is enough
                        }
                    }
                    log(&echo_label(size), &echo_cell(&runs));
                    results.echo.insert(size, runs);
                }
            }
            Workload::Connections | Workload::Scaling => {
                let counts = match workload {
                    Workload::Connections => &[IDLE_CONNECTIONS][..],
                    _ => scaling,
                };
                for &count in counts {
                    let server = Server::start(name);
                    let result = workloads::idle_connections(&server, protocol, count);
                    let cells = connections_cells(&result);
                    for (label, cell) in connections_labels(count).iter().zip(cells) {
                        log(label, &cell);
                    }
                    results.connections.insert(count, result);
                }
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
fn connections_labels(count: usize) -> [String; 3] {
    let count = thousands(count);
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

/// The median of the runs, and their range: "16,467 round trips/s
/// (14,002-17,310), 0.3 MB/s each way".
fn echo_cell(runs: &[Echo]) -> String {
    let rates = echo_rates(runs);
    if let Some(not_done) = runs.iter().find(|run| !matches!(run, Echo::Done { .. })) {
        return match not_done {
            Echo::Refused(Some(code)) => format!("refused ({code})"),
            Echo::Refused(None) => "refused (closed)".to_string(),
            Echo::Failed(error) => format!("failed: {error}"),
            Echo::Done { .. } => unreachable!(),
        };
    }
    let median = rates[rates.len() / 2];
    let megabytes = runs.iter().map(|run| match run {
        Echo::Done {
            megabytes_per_second,
            ..
        } => *megabytes_per_second,
        _ => 0.0,
    });
    let mut megabytes: Vec<f64> = megabytes.collect();
    megabytes.sort_by(f64::total_cmp);
    format!(
        "{} round trips/s ({}-{} in {} runs), {:.1} MB/s each way",
        thousands(median.round() as usize),
        thousands(rates[0].round() as usize),
        thousands(rates[rates.len() - 1].round() as usize),
        rates.len(),
        megabytes[megabytes.len() / 2]
    )
}

/// The round trips per second of the runs that were done, in order.
fn echo_rates(runs: &[Echo]) -> Vec<f64> {
    let mut rates: Vec<f64> = runs
        .iter()
        .filter_map(|run| match run {
            Echo::Done {
                round_trips_per_second,
                ..
            } => Some(*round_trips_per_second),
            _ => None,
        })
        .collect();
    rates.sort_by(f64::total_cmp);
    rates
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
            results.echo.get(&size).map(|runs| echo_cell(runs))
        });
    }
    let mut counts: Vec<usize> = all
        .iter()
        .flat_map(|(_, results)| results.connections.keys().copied())
        .collect();
    counts.sort();
    counts.dedup();
    for count in counts {
        for (index, label) in connections_labels(count).into_iter().enumerate() {
            row(label, &|results| {
                let connections = results.connections.get(&count)?;
                Some(connections_cells(connections)[index].clone())
            });
        }
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

/// The ratios the conclusions quote, each from this run's figures: stage 6
/// against stage 5 and the reference (chapter 6), stage 7 against stage 6,
/// the reference and the Node.js peer (chapter 7).
fn print_ratios(all: &[(String, Results)]) {
    let find = |name: &str| {
        let found = all.iter().find(|(server, _)| server == name);
        found.map(|(_, results)| results)
    };
    let mut lines = Vec::new();
    if let (Some(new), Some(old)) = (find("step-06"), find("step-05")) {
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
    if let (Some(new), Some(reference)) = (find("step-06"), find(REFERENCE)) {
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
    for other in ["step-06", REFERENCE, NODE] {
        let (Some(new), Some(old)) = (find("step-07"), find(other)) else {
            continue;
        };
        let pair = ("step-07", other);
        let sizes = [50, 200, 1000];
        lines.push(ratio_line(
            "a message among idle connections",
            pair,
            &message_cases(new, old),
        ));
        lines.push(ratio_line("memory", pair, &memory_cases(new, old)));
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
        lines.push(ratio_line(
            "echo round trips/s (medians)",
            pair,
            &echo_cases(new, old),
        ));
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
    let with_connections =
        |results: &Results| Some(connections(results, IDLE_CONNECTIONS)?.idle_cpu);
    vec![
        (format!("{IDLE_CLIENTS} clients"), a.idle_cpu, b.idle_cpu),
        (
            format!("{} idle connections", thousands(IDLE_CONNECTIONS)),
            with_connections(a),
            with_connections(b),
        ),
    ]
}

/// Memory per connection, for each number of idle connections.
fn memory_cases(a: &Results, b: &Results) -> Vec<Case> {
    connection_cases(a, b, |connections| connections.kib_per_connection)
}

/// The time of a message between two new clients, for each number of
/// idle connections.
fn message_cases(a: &Results, b: &Results) -> Vec<Case> {
    connection_cases(a, b, |connections| connections.round_trip.as_secs_f64())
}

fn connection_cases(a: &Results, b: &Results, figure: fn(&Connections) -> f64) -> Vec<Case> {
    let counts = a
        .connections
        .keys()
        .filter(|count| b.connections.contains_key(count));
    counts
        .map(|&count| {
            let case = format!("{} idle connections", thousands(count));
            let of = |results: &Results| Some(figure(connections(results, count)?));
            (case, of(a), of(b))
        })
        .collect()
}

fn connections(results: &Results, count: usize) -> Option<&Connections> {
    results.connections.get(&count)?.as_ref().ok()
}

/// The median echo of 16 B and 4 KiB, on both servers.
fn echo_cases(a: &Results, b: &Results) -> Vec<Case> {
    let median = |results: &Results, size| {
        let runs = results.echo.get(&size)?;
        let rates = echo_rates(runs);
        (rates.len() == runs.len()).then(|| rates[rates.len() / 2])
    };
    [16, 4096]
        .iter()
        .map(|&size| (human_size(size), median(a, size), median(b, size)))
        .collect()
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

// ------------------------------------------------------------- the chart

/// Draws the time of a message against the number of idle connections,
/// one line per server that held at least two of the numbers.
fn write_chart(all: &[(String, Results)], path: &std::path::Path) {
    let lines: Vec<chart::Line> = all
        .iter()
        .map(|(name, results)| chart::Line {
            name: name.clone(),
            points: results
                .connections
                .iter()
                .filter_map(|(&count, result)| Some((count, result.as_ref().ok()?.round_trip)))
                .collect(),
        })
        .filter(|line| line.points.len() >= 2)
        .collect();
    if lines.is_empty() {
        return;
    }
    let svg = chart::draw(&lines);
    if let Some(folder) = path.parent() {
        let _ = std::fs::create_dir_all(folder);
    }
    match std::fs::write(path, svg) {
        Ok(()) => eprintln!("chart: {}", path.display()),
        Err(error) => eprintln!("cannot write the chart to {}: {error}", path.display()),
    }
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
