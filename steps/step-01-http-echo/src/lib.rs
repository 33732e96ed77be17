//! Stage 1: an HTTP echo server.
//!
//! It accepts one connection at a time, reads one HTTP request, and answers
//! `200 OK` with the request itself as plain text. Run it with
//! `cargo run -p step-01` and try `curl -s -d hello http://127.0.0.1:8080/x`.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod http;

use http::{Request, Response};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

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
/// Every request gets itself back, as plain text.
fn respond(request: &Request) -> Response {
    Response::new(200, "OK")
        .with_header("Connection", "close")
        .with_body("text/plain; charset=utf-8", request.to_bytes())
}
// ANCHOR_END: respond

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
