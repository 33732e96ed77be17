//! Stage 2: the WebSocket opening handshake.
//!
//! Stage 1's HTTP echo server, plus: a request that asks to upgrade to a
//! WebSocket gets `101 Switching Protocols`, after which the server prints
//! every byte the client sends, in hex. `GET /` serves a page whose script
//! opens a WebSocket, so a browser can show the handshake in its network tab.
//! Run it with `cargo run -p step-02` and open http://127.0.0.1:8080.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod handshake;
pub mod http;

use http::{Request, Response};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we show what an upgraded client sends before hanging up. This
/// stage serves one client at a time, so it cannot listen forever.
pub const LISTEN_AFTER_UPGRADE: Duration = Duration::from_secs(10);

/// The page served at `/`: it opens a WebSocket and sends one message.
const INDEX_HTML: &str = include_str!("index.html");

// ANCHOR: serve
/// Serves clients one after another, forever.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    for stream in listener.incoming() {
        match stream {
            // A failure with one client is that client's problem: report it
            // and go on to the next one.
            Ok(stream) => {
                if let Err(error) = handle_client(stream) {
                    log!("client error: {error}");
                }
            }
            Err(error) => log!("accept failed: {error}"),
        }
    }
    Ok(())
}
// ANCHOR_END: serve

// ANCHOR: handle_client
fn handle_client(stream: TcpStream) -> io::Result<()> {
    let peer = stream.peer_addr()?;
    log!("{peer}: connected");
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut reader = DeadlineReader::new(&stream, deadline);
    // Bytes that arrived and were not used yet: see `read_request`.
    let mut input = Vec::new();
    let request = match http::read_request(&mut reader, &mut input) {
        Ok(request) => request,
        Err(error) => {
            log!("{peer}: {error}");
            // Some failures leave nothing to answer: then we just hang up.
            if let Some(response) = error.response() {
                send(&stream, peer, &response)?;
            }
            return Ok(());
        }
    };
    log!(
        "{peer}: {} {}",
        request.method,
        log::escape(&request.target)
    );
    if handshake::is_upgrade_request(&request) {
        return upgrade(&stream, peer, &request, reader, &input);
    }
    send(&stream, peer, &respond(&request))
}

/// Writes a whole response.
///
/// `Write` is implemented for `&TcpStream`, so a shared reference is enough
/// to write while the reader above still borrows the stream for reading.
fn send(mut stream: &TcpStream, peer: SocketAddr, response: &Response) -> io::Result<()> {
    stream.write_all(&response.to_bytes())?;
    log!("{peer}: answered {} {}", response.status, response.reason);
    Ok(())
}
// ANCHOR_END: handle_client

// ANCHOR: respond
/// `GET /` gets the page; every other request gets itself back, as plain text.
fn respond(request: &Request) -> Response {
    if request.method == "GET" && request.target == "/" {
        return Response::new(200, "OK")
            .with_header("Connection", "close")
            .with_body("text/html; charset=utf-8", INDEX_HTML);
    }
    Response::new(200, "OK")
        .with_header("Connection", "close")
        .with_body("text/plain; charset=utf-8", request.to_bytes())
}
// ANCHOR_END: respond

// ANCHOR: upgrade
/// Answers an upgrade request, and if it was accepted, shows what the client
/// sends next: WebSocket frames, which stage 3 will decode.
fn upgrade(
    stream: &TcpStream,
    peer: SocketAddr,
    request: &Request,
    mut reader: DeadlineReader,
    input: &[u8],
) -> io::Result<()> {
    let response = match handshake::accept(request) {
        Ok(response) => response,
        Err(error) => {
            log!("{peer}: upgrade refused: {error:?}");
            return send(stream, peer, &error.response());
        }
    };
    send(stream, peer, &response)?;
    log!("{peer}: handshake done; from now on it speaks WebSocket");
    // The client may have sent more right after its request: show that first.
    if !input.is_empty() {
        log!("{peer}: {} bytes: {}", input.len(), hex(input));
    }
    reader.deadline = Instant::now() + LISTEN_AFTER_UPGRADE;
    let mut buffer = [0; 4096];
    loop {
        let received = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(received) => received,
            Err(error) if error.kind() == io::ErrorKind::TimedOut => break,
            Err(error) => return Err(error),
        };
        log!("{peer}: {received} bytes: {}", hex(&buffer[..received]));
    }
    log!("{peer}: hanging up (stage 3 will answer these frames)");
    Ok(())
}

/// `[0x81, 0x85]` -> `"81 85"`
fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    pairs.join(" ")
}
// ANCHOR_END: upgrade

// ANCHOR: deadline_reader
/// A reader that gives up once `deadline` has passed.
///
/// A read timeout alone is not enough: it limits each `read` call, so a
/// client sending one byte every few seconds could hold the server forever.
/// Here every read may only wait for what is left of the time allowed.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    deadline: Instant,
}

impl<'a> DeadlineReader<'a> {
    fn new(stream: &'a TcpStream, deadline: Instant) -> DeadlineReader<'a> {
        DeadlineReader { stream, deadline }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let time_left = self.deadline.saturating_duration_since(Instant::now());
        if time_left.is_zero() {
            return Err(timed_out());
        }
        self.stream.set_read_timeout(Some(time_left))?;
        match self.stream.read(buffer) {
            // A read timeout shows up as WouldBlock on Unix, TimedOut on Windows.
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Err(timed_out()),
            result => result,
        }
    }
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "the client took too long")
}
// ANCHOR_END: deadline_reader
