//! A rough load: `clients` chat clients connect to ADDRESS (spread by the
//! kernel over every server sharing its port), join, and each sends
//! `count` messages while reading everything. A client stays at most
//! [`WINDOW`] rounds ahead of what it has received from everyone, so the
//! slowest path (through Redis, to the other server) sets the pace, and
//! no client falls so far behind that the server lets it go. It reports
//! how long until every client had every message, and gives up after 60 s.
//!
//! Stage 8's limits are for people, not for a load: start the servers with
//! room for it, then run the load against their port.
//!
//! ```console
//! $ redis-server --port 6379 --save '' --appendonly no &
//! $ cargo build --release -p step-09 --examples
//! $ target/release/step-09 127.0.0.1:8080 --redis 127.0.0.1:6379 --max-messages-per-second 1000000 &
//! $ target/release/step-09 127.0.0.1:8080 --redis 127.0.0.1:6379 --max-messages-per-second 1000000 &
//! $ target/release/examples/load 127.0.0.1:8080 20 2000
//! ```

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Barrier, Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How many rounds (one message from every client) a client may be ahead
/// of what it has received.
const WINDOW: usize = 20;

fn main() {
    let mut args = std::env::args().skip(1);
    let address = args.next().unwrap_or("127.0.0.1:8080".to_string());
    let clients: usize = args.next().map_or(20, |n| n.parse().unwrap());
    let count: usize = args.next().map_or(500, |n| n.parse().unwrap());
    let joined = Arc::new(Barrier::new(clients + 1));
    let go = Arc::new(Barrier::new(clients + 1));
    let readers: Vec<_> = (0..clients)
        .map(|index| {
            let (address, joined, go) = (address.clone(), joined.clone(), go.clone());
            thread::spawn(move || run_client(&address, index, clients, count, &joined, &go))
        })
        .collect();
    joined.wait();
    // Everyone has joined, and has had the others' joins: go.
    thread::sleep(Duration::from_millis(500));
    let start = Instant::now();
    go.wait();
    let received: usize = readers
        .into_iter()
        .map(|reader| reader.join().unwrap())
        .sum();
    let elapsed = start.elapsed();
    let sent = clients * count;
    println!(
        "{clients} clients x {count} messages: {sent} sent, {received} of {} delivered in {elapsed:.2?}: \
         {:.0} messages/s in, {:.0} deliveries/s out",
        sent * clients,
        sent as f64 / elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64()
    );
}

/// One client: joins, waits for all to join, then writes its messages from
/// a second thread while it reads; returns how many chat messages it got.
fn run_client(
    address: &str,
    index: usize,
    clients: usize,
    count: usize,
    joined: &Barrier,
    go: &Barrier,
) -> usize {
    let mut stream = TcpStream::connect(address).unwrap();
    stream.set_nodelay(true).unwrap();
    let request = "GET / HTTP/1.1\r\nHost: load\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                   Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .write_all(&frame(&format!(
            r#"{{"type":"join","name":"load{index}"}}"#
        )))
        .unwrap();
    let mut reader = Frames::new(stream.try_clone().unwrap());
    let welcome = reader.next_text().expect("a welcome");
    assert!(welcome.contains("welcome"), "{welcome}");
    // The joins of those who come after us.
    let mut joins = 0;
    joined.wait();
    // How many chat messages this client has received, for its writer.
    let received = Arc::new((Mutex::new(0), Condvar::new()));
    let writer = {
        let mut stream = stream.try_clone().unwrap();
        let received = Arc::clone(&received);
        thread::spawn(move || {
            let (lock, changed) = &*received;
            for n in 0..count {
                let mut got = lock.lock().unwrap();
                while *got + WINDOW * clients < n * clients {
                    got = changed.wait(got).unwrap();
                }
                drop(got);
                let text = format!(r#"{{"type":"message","text":"{index} {n}"}}"#);
                stream.write_all(&frame(&text)).unwrap();
            }
        })
    };
    go.wait();
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut messages = 0;
    while messages < clients * count && Instant::now() < deadline {
        match reader.next_text() {
            Some(text) if text.starts_with(r#"{"type":"message""#) => {
                messages += 1;
                let (lock, changed) = &*received;
                *lock.lock().unwrap() = messages;
                changed.notify_one();
            }
            Some(text) if text.starts_with(r#"{"type":"join""#) => joins += 1,
            Some(_) => {}
            None => break,
        }
    }
    // Let a writer still waiting go, if we gave up.
    let (lock, changed) = &*received;
    *lock.lock().unwrap() = usize::MAX / 2;
    changed.notify_one();
    let _ = joins;
    writer.join().unwrap();
    messages
}

/// A masked text frame.
fn frame(text: &str) -> Vec<u8> {
    let payload = text.as_bytes();
    assert!(payload.len() < 126);
    let mut frame = vec![0x81, 0x80 | payload.len() as u8, 0, 0, 0, 0];
    frame.extend_from_slice(payload);
    frame
}

/// Reads the server's frames: the 101 first, then unmasked text frames.
struct Frames {
    stream: TcpStream,
    input: Vec<u8>,
    past_head: bool,
}

impl Frames {
    fn new(stream: TcpStream) -> Frames {
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Frames {
            stream,
            input: Vec::new(),
            past_head: false,
        }
    }

    fn next_text(&mut self) -> Option<String> {
        loop {
            if !self.past_head {
                if let Some(end) = self.input.windows(4).position(|w| w == b"\r\n\r\n") {
                    self.input.drain(..end + 4);
                    self.past_head = true;
                    continue;
                }
            } else if let Some(text) = self.take_frame() {
                return Some(text);
            }
            let mut buffer = [0; 64 * 1024];
            match self.stream.read(&mut buffer) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.input.extend_from_slice(&buffer[..n]),
            }
        }
    }

    fn take_frame(&mut self) -> Option<String> {
        let [_, second, ..] = self.input[..] else {
            return None;
        };
        let (len, header) = match second {
            126 => (
                u16::from_be_bytes([*self.input.get(2)?, *self.input.get(3)?]) as usize,
                4,
            ),
            len => (len as usize, 2),
        };
        let bytes: Vec<u8> = self.input.get(..header + len)?.to_vec();
        self.input.drain(..header + len);
        Some(String::from_utf8_lossy(&bytes[header..]).into_owned())
    }
}
