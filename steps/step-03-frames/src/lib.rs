//! Stage 3: WebSocket frames, and an echo server.
//!
//! Stage 2's server, plus: after the handshake it reads WebSocket frames (see
//! [`ws`]), sends every message back to the client that sent it, answers
//! pings, refuses whatever breaks RFC 6455 with the right close code, and
//! closes the way the RFC says. `GET /` serves a page to send messages from.
//! It still serves one client at a time: stage 4 changes that.
//! Run it with `cargo run -p step-03` and open http://127.0.0.1:8080.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod handshake;
pub mod http;
pub mod ws;

#[cfg(test)]
mod random;

use http::{Request, Response};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};
use ws::{Event, Opcode, ReadError};

/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we wait, after our close frame, for the client to close too.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// The page served at `/`: it sends what you type, and shows what comes back.
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
        return upgrade(&stream, peer, &request, reader, input);
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
/// Answers an upgrade request, and if it was accepted, speaks WebSocket
/// until the conversation ends.
fn upgrade(
    stream: &TcpStream,
    peer: SocketAddr,
    request: &Request,
    mut reader: DeadlineReader,
    input: Vec<u8>,
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
    // A WebSocket stays open for as long as the client likes: no deadline.
    // The client may have sent its first frames right after its request:
    // they are the start of `input`.
    reader.deadline = None;
    echo(stream, peer, &mut reader, input)
}
// ANCHOR_END: upgrade

// ANCHOR: echo
/// Reads frames until the conversation ends: every message goes back to the
/// client unchanged, a ping gets a pong, a close gets a close, and a broken
/// rule gets a close frame that says which kind of rule it was.
fn echo(
    stream: &TcpStream,
    peer: SocketAddr,
    reader: &mut DeadlineReader,
    mut input: Vec<u8>,
) -> io::Result<()> {
    let mut messages = ws::Messages::new(ws::MAX_MESSAGE_LEN);
    loop {
        let event = ws::read_frame(reader, &mut input, ws::MAX_MESSAGE_LEN)
            .and_then(|frame| messages.push(frame).map_err(ReadError::Protocol));
        match event {
            Ok(Event::Message(message)) => {
                send_frame(stream, message.opcode(), message.payload())?;
                log!("{peer}: {} -> echoed", message.describe());
            }
            Ok(Event::Fragment) => {}
            Ok(Event::Ping(payload)) => {
                send_frame(stream, Opcode::Pong, &payload)?;
                log!("{peer}: ping -> pong");
            }
            // We never send pings, so this pong answers nothing: a client
            // may send one as a heartbeat, and it needs no answer.
            Ok(Event::Pong(_)) => log!("{peer}: pong, ignored"),
            Ok(Event::Close(close)) => {
                // Echo the client's status code, if it sent one.
                let payload = match close.code {
                    Some(code) => ws::close_payload(code, ""),
                    None => Vec::new(),
                };
                send_frame(stream, Opcode::Close, &payload)?;
                log!("{peer}: close {close} -> close");
                hang_up(stream, peer, reader);
                return Ok(());
            }
            Err(ReadError::Protocol(error)) => {
                // The reason says which rule, for whoever debugs the client.
                let code = error.close_code();
                let payload = ws::close_payload(code, &error.to_string());
                send_frame(stream, Opcode::Close, &payload)?;
                log!("{peer}: {error} -> close {code}");
                hang_up(stream, peer, reader);
                return Ok(());
            }
            Err(ReadError::Io(error)) if error.kind() == io::ErrorKind::UnexpectedEof => {
                log!("{peer}: left without a close frame");
                return Ok(());
            }
            Err(ReadError::Io(error)) => return Err(error),
        }
    }
}

/// Sends one frame. Header and payload are in one buffer: one write.
fn send_frame(mut stream: &TcpStream, opcode: Opcode, payload: &[u8]) -> io::Result<()> {
    stream.write_all(&ws::encode_frame(opcode, payload))
}
// ANCHOR_END: echo

// ANCHOR: hang_up
/// Ends the connection once our close frame is sent, without losing it.
///
/// Closing a socket while the client's bytes are still unread makes the
/// system reset the connection (a TCP RST), and a reset can destroy our close
/// frame before the client has read it. So first we stop sending: `shutdown`
/// tells the client that nothing follows our close frame. Then we read and
/// drop whatever the client still sends, until it closes its side too, or
/// until [`CLOSE_TIMEOUT`] runs out.
fn hang_up(stream: &TcpStream, peer: SocketAddr, reader: &mut DeadlineReader) {
    // Errors are no news here: they mean the client has already gone.
    let _ = stream.shutdown(Shutdown::Write);
    reader.deadline = Some(Instant::now() + CLOSE_TIMEOUT);
    let _ = io::copy(reader, &mut io::sink());
    log!("{peer}: disconnected");
}
// ANCHOR_END: hang_up

// ANCHOR: deadline_reader
/// A reader that gives up once `deadline` has passed.
///
/// A read timeout alone is not enough: it limits each `read` call, so a
/// client sending one byte every few seconds could hold the server forever.
/// Here every read may only wait for what is left of the time allowed.
struct DeadlineReader<'a> {
    stream: &'a TcpStream,
    /// `None`: no deadline, every read waits for as long as it takes.
    deadline: Option<Instant>,
}

impl<'a> DeadlineReader<'a> {
    fn new(stream: &'a TcpStream, deadline: Instant) -> DeadlineReader<'a> {
        DeadlineReader {
            stream,
            deadline: Some(deadline),
        }
    }
}

impl Read for DeadlineReader<'_> {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let Some(deadline) = self.deadline else {
            self.stream.set_read_timeout(None)?;
            return self.stream.read(buffer);
        };
        let time_left = deadline.saturating_duration_since(Instant::now());
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
