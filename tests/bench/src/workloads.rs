//! The workloads: what the bench asks of a server, and what it measures.
//! Every workload gets a server of its own, freshly started.

use crate::client::{self, Client, Incoming};
use crate::server::{self, Server};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How the server expects chat messages to look.
#[derive(Clone, Copy, PartialEq)]
pub enum Protocol {
    /// Stages 3-4: a text message goes out exactly as it came in.
    Plain,
    /// Stage 5 on, and the reference: JSON, with a join first and a `from`
    /// field on the way out.
    Json,
}

pub fn protocol_of(server: &str) -> Protocol {
    match server {
        name if name.starts_with("step-03") || name.starts_with("step-04") => Protocol::Plain,
        _ => Protocol::Json,
    }
}

/// Connects a client and, for the JSON servers, joins under `name`.
fn connect(address: SocketAddr, protocol: Protocol, name: &str) -> Client {
    let mut client = Client::connect(address).expect("connect");
    if protocol == Protocol::Json {
        join(&mut client, name).unwrap_or_else(|error| panic!("{name}: {error}"));
    }
    client
}

/// Joins, and waits for the welcome, so that the client is a member before
/// anyone talks. Any other answer is a failure.
fn join(client: &mut Client, name: &str) -> Result<(), String> {
    let request = format!(r#"{{"type":"join","name":"{name}"}}"#);
    client
        .send_text(&request)
        .map_err(|error| format!("join: {error}"))?;
    loop {
        match client.receive() {
            Ok(Incoming::Text(text)) if text.starts_with(br#"{"type":"welcome""#) => return Ok(()),
            Ok(Incoming::Text(text)) if text.starts_with(br#"{"type":"error""#) => {
                return Err(format!("join refused: {}", String::from_utf8_lossy(&text)));
            }
            Ok(Incoming::Close(code)) => return Err(format!("closed with code {code:?}")),
            Ok(_) => {}
            Err(error) => return Err(format!("no welcome: {}", explain(error))),
        }
    }
}

/// What went wrong with a connection, in words: a read that timed out
/// says "Resource temporarily unavailable", which explains nothing.
fn explain(error: io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => "no answer in time".to_string(),
        _ => error.to_string(),
    }
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

// ---------------------------------------------------------------- idle CPU

/// `clients` clients connected and silent: the server's CPU use over five
/// seconds, as a percentage of one core.
pub fn idle_cpu(server: &Server, protocol: Protocol, clients: usize) -> f64 {
    let _clients: Vec<Client> = (0..clients)
        .map(|i| connect(server.address, protocol, &format!("idle{i}")))
        .collect();
    thread::sleep(Duration::from_secs(1));
    server.cpu_use_over(Duration::from_secs(5))
}

// --------------------------------------------------------------- broadcast

/// What a broadcast measured.
pub struct Broadcast {
    pub deliveries_per_second: f64,
    pub p50: Duration,
    pub p99: Duration,
}

/// Client 0 sends `messages` messages, with at most `window` of them on
/// their way at once, and if `pace` is given, one per `pace` at most.
/// Every client, client 0 too, receives every message.
pub fn broadcast(
    address: SocketAddr,
    protocol: Protocol,
    clients: usize,
    messages: u64,
    window: u64,
    pace: Option<Duration>,
) -> Result<Broadcast, String> {
    let epoch = Instant::now();
    let connected: Vec<Client> = (0..clients)
        .map(|i| connect(address, protocol, &format!("user{i}")))
        .collect();
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
    // Set by a receiver that lost its connection: the rest will never come.
    let broken = Arc::new(AtomicBool::new(false));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(clients * messages as usize)));
    let receiver_count = receivers.len() as u32;
    let handles: Vec<_> = receivers
        .into_iter()
        .map(|mut client| {
            let (arrivals, completed, broken, latencies) = (
                arrivals.clone(),
                completed.clone(),
                broken.clone(),
                latencies.clone(),
            );
            thread::spawn(move || {
                let mut mine = Vec::with_capacity(messages as usize);
                let mut received = 0;
                while received < messages {
                    let Ok(Incoming::Text(text)) = client.receive() else {
                        broken.store(true, Ordering::Release);
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
        while sequence - completed.load(Ordering::Acquire) >= window
            && !broken.load(Ordering::Acquire)
        {
            thread::sleep(Duration::from_micros(20));
        }
        if let Some(pace) = pace {
            thread::sleep(pace);
        }
        let stamp = format!("{sequence} {}", epoch.elapsed().as_nanos());
        if sender.send_text(&chat_message(protocol, &stamp)).is_err() {
            broken.store(true, Ordering::Release);
        }
        if broken.load(Ordering::Acquire) {
            break;
        }
    }
    for handle in handles {
        handle.join().unwrap();
    }
    let elapsed = started.elapsed();
    if broken.load(Ordering::Acquire) {
        return Err("a client lost its connection".to_string());
    }
    let mut latencies = latencies.lock().unwrap();
    latencies.sort();
    Ok(Broadcast {
        deliveries_per_second: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50: percentile(&latencies, 50.0),
        p99: percentile(&latencies, 99.0),
    })
}

fn parse_stamp(text: &str) -> Option<(u64, u64)> {
    let (sequence, sent) = text.split_once(' ')?;
    Some((sequence.parse().ok()?, sent.parse().ok()?))
}

fn percentile(sorted: &[Duration], percent: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() - 1) as f64 * percent / 100.0).round() as usize;
    sorted[index]
}

// -------------------------------------------------------------------- echo

/// What an echo measured.
pub enum Echo {
    Done {
        round_trips_per_second: f64,
        megabytes_per_second: f64,
    },
    /// The server closed the connection with this code instead of sending
    /// the message back: 1009 means "too big".
    Refused(Option<u16>),
    Failed(String),
}

/// One client sends a message of `size` bytes and waits for it to come
/// back (with one client, broadcast is echo), again and again for `budget`.
pub fn echo(address: SocketAddr, protocol: Protocol, size: usize, budget: Duration) -> Echo {
    static CLIENTS: AtomicU32 = AtomicU32::new(0);
    let number = CLIENTS.fetch_add(1, Ordering::Relaxed);
    let mut client = connect(address, protocol, &format!("echo{size}-{number}"));
    let message = chat_message(protocol, &"x".repeat(size));
    let started = Instant::now();
    let mut round_trips = 0u64;
    while started.elapsed() < budget {
        if let Err(outcome) = echo_once(&mut client, protocol, &message, size) {
            return outcome;
        }
        round_trips += 1;
    }
    let seconds = started.elapsed().as_secs_f64();
    Echo::Done {
        round_trips_per_second: round_trips as f64 / seconds,
        megabytes_per_second: round_trips as f64 * size as f64 / seconds / 1e6,
    }
}

/// Sends `message` and waits for the chat text of `size` bytes to come back.
fn echo_once(
    client: &mut Client,
    protocol: Protocol,
    message: &str,
    size: usize,
) -> Result<(), Echo> {
    // A server that refuses the message may close the connection before it
    // has all of it, and the send then fails: its close frame may still be
    // there to read, and says why.
    let sent = client.send_text(message);
    loop {
        match client.receive() {
            Ok(Incoming::Text(reply))
                if chat_text(protocol, &reply).map(str::len) == Some(size) =>
            {
                return Ok(());
            }
            Ok(Incoming::Close(code)) => return Err(Echo::Refused(code)),
            Ok(_) => {}
            Err(error) => {
                let error = sent.err().unwrap_or(error);
                return Err(Echo::Failed(explain(error)));
            }
        }
    }
}

// ----------------------------------------------------- idle connections

/// What holding many idle connections measured.
pub struct Connections {
    /// How much the server's resident memory grew, per connection.
    pub kib_per_connection: f64,
    /// The server's CPU use with all of them connected and silent.
    pub idle_cpu: f64,
    /// How long a message took from one new client to another, with all
    /// of them still connected: the median of [`MESSAGES_BETWEEN_NEW_CLIENTS`].
    pub round_trip: Duration,
}

/// How many messages go from one new client to the other: one alone may
/// meet a page fault, a timer or another process.
const MESSAGES_BETWEEN_NEW_CLIENTS: usize = 21;

/// How many connections come from each loopback address: well under the
/// 28,232 ports an address has to connect from (32768 to 60999, Linux's
/// default `ip_local_port_range`), with room for the other clients.
const CONNECTIONS_PER_ADDRESS: usize = 10_000;

/// The memory the system must keep for everyone else while the bench opens
/// connections: a server that would take more than this is stopped there
/// (the tokio reference needs 14 GiB for 100,000).
const MEMORY_TO_SPARE_KIB: u64 = 3 << 20;

/// How many connections are on their way at once while they open: fewer
/// than a listening socket's usual backlog (128), so none is turned away.
const CONNECTIONS_AT_ONCE: usize = 100;

/// Opens `count` WebSocket connections that never join (a join announces
/// itself to everyone already there, so n joins cost n² messages), from
/// 127.0.0.1, then 127.0.0.2, ..., then checks that the server still
/// serves new clients.
pub fn idle_connections(
    server: &Server,
    protocol: Protocol,
    count: usize,
) -> Result<Connections, String> {
    let before = server.resident_kib();
    let connections = open_idle(server.address, count)?;
    thread::sleep(Duration::from_secs(1));
    let after = server.resident_kib();
    let idle_cpu = server.cpu_use_over(Duration::from_secs(3));
    let closed = connections
        .iter()
        .filter(|stream| !client::is_open(stream))
        .count();
    if closed > 0 {
        return Err(format!("the server closed {closed} of {count} connections"));
    }
    let round_trip = round_trip(server.address, protocol)?;
    Ok(Connections {
        kib_per_connection: after.saturating_sub(before) as f64 / count as f64,
        idle_cpu,
        round_trip,
    })
}

/// Opens `count` connections, [`CONNECTIONS_AT_ONCE`] at a time: without
/// a thread each, and without a buffer each.
fn open_idle(address: SocketAddr, count: usize) -> Result<Vec<TcpStream>, String> {
    let mut connections: Vec<TcpStream> = Vec::with_capacity(count);
    while connections.len() < count {
        let failed = |error| format!("{} of {count} connected, then: {error}", connections.len());
        let available = server::available_kib();
        if available < MEMORY_TO_SPARE_KIB {
            let mib = available >> 10;
            let error = io::Error::other(format!("only {mib} MiB of memory left: stopped"));
            return Err(failed(error));
        }
        let batch = CONNECTIONS_AT_ONCE.min(count - connections.len());
        let mut opening = Vec::with_capacity(batch);
        for i in 0..batch {
            let local = loopback_address((connections.len() + i) / CONNECTIONS_PER_ADDRESS);
            opening.push(client::start_handshake(local, address).map_err(failed)?);
        }
        for stream in &mut opening {
            client::finish_handshake(stream).map_err(failed)?;
        }
        connections.append(&mut opening);
    }
    Ok(connections)
}

/// 127.0.0.1 for `index` 0, 127.0.0.2 for 1, ...: all of 127.0.0.0/8 is
/// loopback on Linux.
fn loopback_address(index: usize) -> Ipv4Addr {
    Ipv4Addr::new(
        127,
        0,
        0,
        u8::try_from(1 + index).expect("at most 254 addresses"),
    )
}

/// Two new clients join; one sends messages and the other receives them,
/// one at a time. Returns how long one took (the median), or what went
/// wrong.
fn round_trip(address: SocketAddr, protocol: Protocol) -> Result<Duration, String> {
    let mut sender = Client::connect(address).map_err(|error| format!("connect: {error}"))?;
    let mut receiver = Client::connect(address).map_err(|error| format!("connect: {error}"))?;
    if protocol == Protocol::Json {
        join(&mut sender, "alice")?;
        join(&mut receiver, "bob")?;
    }
    let mut took = Vec::new();
    for i in 0..MESSAGES_BETWEEN_NEW_CLIENTS {
        let started = Instant::now();
        let text = format!("hello {i}");
        let message = chat_message(protocol, &text);
        sender
            .send_text(&message)
            .map_err(|error| format!("send: {error}"))?;
        loop {
            match receiver.receive() {
                Ok(Incoming::Text(delivered))
                    if chat_text(protocol, &delivered) == Some(text.as_str()) =>
                {
                    took.push(started.elapsed());
                    break;
                }
                Ok(Incoming::Close(code)) => return Err(format!("closed with code {code:?}")),
                Ok(_) => {}
                Err(error) => return Err(format!("the message never came: {}", explain(error))),
            }
        }
    }
    took.sort();
    Ok(percentile(&took, 50.0))
}
