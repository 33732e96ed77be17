//! The test client: HTTP and WebSocket (RFC 6455) over real TCP, written
//! from the RFCs for the checks.
//!
//! It shares no code with the stages on purpose: a check that used the
//! server's encoder to check the server's decoder could not catch a mistake
//! they both make. And it does what a check needs rather than what a polite
//! client does: it can send reserved opcodes, set RSV bits, lie about
//! lengths, stop in the middle of a frame. What it reads from a server it
//! holds to the RFC: never masked, no RSV bits.
//!
//! Every byte goes through a [`Conn`], which writes down what went each way
//! (see [`crate::trace`]): when a check fails, the grader shows what was
//! sent and what came back.

use crate::trace::{self, Trace};
use std::cell::Cell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

/// How long a check waits for the server before it fails instead of
/// hanging: 10 s in `cargo test`, where many checks share two cores; the
/// grader sets 2 s, so that a server that does not answer fails quickly.
pub fn patience() -> Duration {
    Duration::from_millis(PATIENCE_MS.load(Ordering::Relaxed))
}

static PATIENCE_MS: AtomicU64 = AtomicU64::new(10_000);

/// Sets [`patience`] for every check run after this.
pub fn set_patience(patience: Duration) {
    PATIENCE_MS.store(patience.as_millis() as u64, Ordering::Relaxed);
}

/// A message for a failed read: what happened, in the words of the report.
pub fn what_happened(error: &io::Error) -> String {
    match error.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("nothing came within {}", trace::seconds(patience()))
        }
        io::ErrorKind::UnexpectedEof => "the server closed the connection".to_string(),
        io::ErrorKind::ConnectionReset => "the server reset the connection".to_string(),
        _ => error.to_string(),
    }
}

// ---------------------------------------------------------------------------
// A connection that writes down what goes each way
// ---------------------------------------------------------------------------

/// A TCP connection of the test client. It reads and writes like a
/// `TcpStream`, and records each exchange in the trace of the check that
/// opened it.
pub struct Conn {
    stream: TcpStream,
    /// Its number in the trace: connection 1 is the first a check opened.
    pub id: usize,
    trace: Option<Arc<Trace>>,
    /// Whether the frame-reading functions answer the server's pings by
    /// themselves, and skip them (see [`answering_pings`]).
    answers_pings: bool,
}

impl Conn {
    /// Connects to `address`, with read and write timeouts of [`patience`].
    #[track_caller]
    pub fn open(address: SocketAddr) -> Conn {
        match TcpStream::connect(address) {
            Ok(stream) => Conn::over(stream),
            Err(error) => {
                panic!("could not connect to {address}: {error} (is the server still running?)")
            }
        }
    }

    /// Connects to `address` from the local address `from` (127.0.0.2, to
    /// be another machine for the server). Fails where that address is not
    /// this machine's: only Linux answers on all of 127.0.0.0/8 by default.
    pub fn open_from(from: std::net::Ipv4Addr, address: SocketAddr) -> io::Result<Conn> {
        let SocketAddr::V4(address) = address else {
            return Err(io::Error::other("the server listens on IPv6"));
        };
        bound::connect_from(from, address).map(Conn::over)
    }

    fn over(stream: TcpStream) -> Conn {
        stream.set_read_timeout(Some(patience())).unwrap();
        stream.set_write_timeout(Some(patience())).unwrap();
        let trace = trace::current();
        let id = trace.as_ref().map_or(0, |trace| trace.opened());
        let answers_pings = ANSWER_PINGS.with(Cell::get);
        Conn {
            stream,
            id,
            trace,
            answers_pings,
        }
    }

    /// A second handle on the same connection (for a thread that writes
    /// while the check reads); it records into the same trace.
    pub fn try_clone(&self) -> io::Result<Conn> {
        Ok(Conn {
            stream: self.stream.try_clone()?,
            id: self.id,
            trace: self.trace.clone(),
            answers_pings: self.answers_pings,
        })
    }

    /// From now on, the server's pings come to the check like any other
    /// frame, for it to answer (or not): for the checks of the heartbeat.
    pub fn see_pings(&mut self) {
        self.answers_pings = false;
    }

    /// Back to answering the server's pings by itself, after
    /// [`Conn::see_pings`]: for what a heartbeat check does after it has
    /// seen what it wanted to.
    pub fn answer_pings(&mut self) {
        self.answers_pings = true;
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.stream.local_addr()
    }

    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.stream.peer_addr()
    }

    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.stream.set_read_timeout(timeout)
    }

    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.stream.set_nodelay(nodelay)
    }

    /// Closes one or both directions, and says so in the trace.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.record(|trace| trace.shut(self.id, how));
        self.stream.shutdown(how)
    }

    /// Marks the end of one unit of input (a frame, an HTTP head), so that
    /// the trace shows each on a line of its own.
    pub fn end_of_unit(&self) {
        self.record(|trace| trace.end_of_unit(self.id));
    }

    fn record(&self, what: impl FnOnce(&Trace)) {
        if let Some(trace) = &self.trace {
            what(trace);
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let result = self.stream.read(buffer);
        let waited = self.stream.read_timeout().ok().flatten();
        self.record(|trace| trace.received(self.id, &result, buffer, waited));
        result
    }
}

impl Write for Conn {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let result = self.stream.write(bytes);
        if let Ok(count) = result {
            self.record(|trace| trace.sent(self.id, &bytes[..count]));
        }
        result
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// Connects to `address` with read and write timeouts of [`patience`].
#[track_caller]
pub fn connect(address: SocketAddr) -> Conn {
    Conn::open(address)
}

thread_local! {
    static ANSWER_PINGS: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the connections it opens on this thread answering the
/// server's pings by themselves, if `on`: a server that pings its quiet
/// clients (stage 8) pings the clients of checks that have nothing to do
/// with it, and those must neither stumble on the ping nor be cut off for
/// not answering. Each ping read by [`try_read_frame`] or waited through
/// by [`expect_silence`] is answered with a pong of the same payload and
/// skipped: it shows in the trace, not in a transcript.
pub fn answering_pings<R>(on: bool, f: impl FnOnce() -> R) -> R {
    let before = ANSWER_PINGS.with(|answer| answer.replace(on));
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            ANSWER_PINGS.with(|answer| answer.set(self.0));
        }
    }
    let _restore = Restore(before);
    f()
}

/// A TCP connection from a local address of our choosing, which std
/// cannot make: `socket`, `bind`, `connect`, by hand.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod bound {
    use std::io;
    use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};
    use std::os::fd::FromRawFd;
    use std::os::raw::c_int;

    /// `struct sockaddr_in` of Linux.
    #[repr(C)]
    struct SockaddrIn {
        family: u16,
        /// In network byte order, as is the address.
        port: u16,
        address: [u8; 4],
        zero: [u8; 8],
    }

    const AF_INET: c_int = 2;
    const SOCK_STREAM: c_int = 1;
    const SOCK_CLOEXEC: c_int = 0o2000000;

    unsafe extern "C" {
        fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
        fn bind(fd: c_int, address: *const SockaddrIn, len: u32) -> c_int;
        fn connect(fd: c_int, address: *const SockaddrIn, len: u32) -> c_int;
    }

    fn sockaddr(ip: Ipv4Addr, port: u16) -> SockaddrIn {
        SockaddrIn {
            family: AF_INET as u16,
            port: port.to_be(),
            address: ip.octets(),
            zero: [0; 8],
        }
    }

    pub fn connect_from(from: Ipv4Addr, to: SocketAddrV4) -> io::Result<TcpStream> {
        // SAFETY: plain system calls on a descriptor we own, with
        // addresses that live across the calls; the descriptor goes to a
        // `TcpStream`, which closes it, as soon as it exists.
        unsafe {
            let fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            let stream = TcpStream::from_raw_fd(fd);
            let len = std::mem::size_of::<SockaddrIn>() as u32;
            if bind(fd, &sockaddr(from, 0), len) != 0 {
                return Err(io::Error::last_os_error());
            }
            if connect(fd, &sockaddr(*to.ip(), to.port()), len) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(stream)
        }
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod bound {
    use std::io;
    use std::net::{Ipv4Addr, SocketAddrV4, TcpStream};

    pub fn connect_from(_from: Ipv4Addr, _to: SocketAddrV4) -> io::Result<TcpStream> {
        Err(io::Error::other(
            "only Linux answers on all of 127.0.0.0/8 by itself",
        ))
    }
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

/// Sends `request` as it is, then reads the response (see [`read_response`]).
#[track_caller]
pub fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(address);
    send_raw(&mut stream, request);
    read_response(&mut stream)
}

/// [`exchange`], waiting up to `wait` for the answer instead of [`patience`]:
/// for a server that may first have to finish with someone else.
#[track_caller]
pub fn exchange_waiting(address: SocketAddr, request: &[u8], wait: Duration) -> String {
    let mut stream = connect(address);
    stream.set_read_timeout(Some(wait)).unwrap();
    send_raw(&mut stream, request);
    read_response(&mut stream)
}

/// Sends `request` as it is, then closes our side of the connection (a
/// half-close: the server reads the end of the stream, and may still write),
/// then reads until the server closes its side too. A server that took the
/// end of our stream for the end of the conversation drops the answer.
#[track_caller]
pub fn exchange_half_closed(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(address);
    send_raw(&mut stream, request);
    stream.shutdown(Shutdown::Write).unwrap();
    read_response(&mut stream)
}

/// Reads one HTTP response: its head, then as many bytes of body as its
/// `Content-Length` says, or, without one, until the server closes the
/// connection. (So a server may keep the connection open after its answer,
/// as HTTP/1.1 allows, and a check still reads the whole answer.)
#[track_caller]
pub fn read_response(stream: &mut Conn) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            // Closed before a whole head: what came is all there is.
            Ok(_) => break,
            Err(error) if error.kind() == io::ErrorKind::ConnectionReset => break,
            Err(error) => panic!(
                "expected an HTTP response: {}, after {:?}",
                what_happened(&error),
                String::from_utf8_lossy(&head)
            ),
        }
    }
    let text = String::from_utf8_lossy(&head).into_owned();
    let length = text
        .split("\r\n")
        .filter_map(|line| line.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("Content-Length"))
        .and_then(|(_, value)| value.trim().parse::<usize>().ok());
    // A 1xx answer (a 101, after which frames follow) has no body.
    let informational = text.starts_with("HTTP/1.1 1");
    let body = match length {
        _ if informational => String::new(),
        Some(length) if head.ends_with(b"\r\n\r\n") => {
            let mut body = vec![0; length];
            if let Err(error) = stream.read_exact(&mut body) {
                panic!(
                    "expected the {length} bytes of body that Content-Length announced: {}",
                    what_happened(&error)
                );
            }
            String::from_utf8_lossy(&body).into_owned()
        }
        _ if head.ends_with(b"\r\n\r\n") => read_to_close(stream),
        _ => String::new(),
    };
    stream.end_of_unit();
    text + &body
}

/// Reads until the server closes the connection; fails the check if it
/// does not within the read timeout.
#[track_caller]
pub fn read_to_close(stream: &mut Conn) -> String {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => {}
        // The server may reset a connection that still has unread bytes.
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!(
            "expected the server to answer and close the connection: {} (after {} bytes)",
            what_happened(&error),
            bytes.len()
        ),
    }
    stream.end_of_unit();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The status line of an HTTP response: `HTTP/1.1 200 OK`.
pub fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

/// An HTTP response, taken apart.
#[derive(Debug, Clone)]
pub struct Response {
    /// `200`, from the status line.
    pub status: u16,
    pub status_line: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// Takes apart a response as the server sent it; fails the check if it
    /// is not one.
    #[track_caller]
    pub fn parse(text: &str) -> Response {
        let Some((head, body)) = text.split_once("\r\n\r\n") else {
            panic!("expected an HTTP response (a head that ends with an empty line), got {text:?}");
        };
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("").to_string();
        let status = status_line
            .strip_prefix("HTTP/1.1 ")
            .and_then(|rest| rest.get(..3))
            .and_then(|code| code.parse().ok());
        let Some(status) = status else {
            panic!("expected a status line such as `HTTP/1.1 200 OK`, got {status_line:?}")
        };
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
            .collect();
        Response {
            status,
            status_line,
            headers,
            body: body.to_string(),
        }
    }

    /// The value of a header; names ignore case.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(found, _)| found.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// Fails the check unless the status is `status`.
    #[track_caller]
    pub fn expect_status(&self, status: u16, why: &str) -> &Response {
        assert!(
            self.status == status,
            "expected status {status} ({why}), got `{}`",
            self.status_line
        );
        self
    }
}

/// Sends `request`, reads the whole answer, and takes it apart.
#[track_caller]
pub fn http(address: SocketAddr, request: &[u8]) -> Response {
    Response::parse(&exchange(address, request))
}

// ---------------------------------------------------------------------------
// The opening handshake
// ---------------------------------------------------------------------------

/// The `Sec-WebSocket-Key` of RFC 6455, section 1.3 ...
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// ... and the `Sec-WebSocket-Accept` a correct server answers it with.
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// The upgrade request [`ws_handshake`] sends, with the key of the RFC.
pub fn upgrade_request(address: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Connects to `address` and does the opening handshake: sends
/// [`upgrade_request`], and checks that the answer is a `101` with the right
/// `Sec-WebSocket-Accept`. Returns the connection, ready for frames.
#[track_caller]
pub fn ws_handshake(address: SocketAddr) -> Conn {
    ws_handshake_over(connect(address), address)
}

/// [`ws_handshake`] on a connection already open (from 127.0.0.2, say).
#[track_caller]
pub fn ws_handshake_over(mut stream: Conn, address: SocketAddr) -> Conn {
    // Without this, Nagle's algorithm holds a small frame back until the
    // server acknowledges the previous one, which a server that has nothing
    // to answer yet (a fragment, say) delays by up to 40 ms.
    stream.set_nodelay(true).unwrap();
    send_raw(&mut stream, upgrade_request(address).as_bytes());
    check_101(&read_http_head(&mut stream));
    stream
}

/// Reads an HTTP response head, up to and including the empty line, one
/// byte at a time: whatever follows (frames) stays unread in the stream.
#[track_caller]
pub fn read_http_head(stream: &mut Conn) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!(
                "expected the answer to the upgrade request: the server closed the connection, \
                 after {:?}",
                String::from_utf8_lossy(&head)
            ),
            Err(error) => panic!(
                "expected the answer to the upgrade request: {}, after {:?}",
                what_happened(&error),
                String::from_utf8_lossy(&head)
            ),
        }
    }
    stream.end_of_unit();
    String::from_utf8_lossy(&head).into_owned()
}

/// Checks a response head: `101 Switching Protocols`, the upgrade headers,
/// and [`RFC_ACCEPT`] for [`RFC_KEY`].
#[track_caller]
pub fn check_101(head: &str) {
    check_101_with(head, RFC_ACCEPT);
}

/// Checks a response head: `101 Switching Protocols`, the upgrade headers,
/// and `accept` as the `Sec-WebSocket-Accept`.
#[track_caller]
pub fn check_101_with(head: &str, accept: &str) {
    let response = Response::parse(head);
    response.expect_status(101, "the upgrade is accepted: Switching Protocols");
    assert!(
        response
            .header("Upgrade")
            .is_some_and(|value| value.eq_ignore_ascii_case("websocket")),
        "the 101 must say `Upgrade: websocket`; it says {:?}",
        response.header("Upgrade")
    );
    assert!(
        response
            .header("Connection")
            .is_some_and(|value| value.to_ascii_lowercase().contains("upgrade")),
        "the 101 must say `Connection: Upgrade`; it says {:?}",
        response.header("Connection")
    );
    assert!(
        response.header("Sec-WebSocket-Accept") == Some(accept),
        "expected `Sec-WebSocket-Accept: {accept}`, got {:?}",
        response.header("Sec-WebSocket-Accept")
    );
}

// ---------------------------------------------------------------------------
// Frames
// ---------------------------------------------------------------------------

/// Opcodes as plain numbers, so that checks can send the reserved ones too.
pub const CONTINUATION: u8 = 0x0;
pub const TEXT: u8 = 0x1;
pub const BINARY: u8 = 0x2;
pub const CLOSE: u8 = 0x8;
pub const PING: u8 = 0x9;
pub const PONG: u8 = 0xA;

/// The FIN bit of a frame's first byte, and the three RSV bits.
pub const FIN: u8 = 0b1000_0000;
pub const RSV1: u8 = 0b0100_0000;
pub const RSV2: u8 = 0b0010_0000;
pub const RSV3: u8 = 0b0001_0000;

/// A different masking key for every frame, so that a server which ignored
/// the key, or used it at the wrong offset, would read garbage. The keys
/// start again with each check ([`reset_masks`]), so that a check sends the
/// same bytes every time it runs.
pub fn next_mask() -> [u8; 4] {
    let n = MASKS.with(|masks| {
        let n = masks.get();
        masks.set(n.wrapping_add(1));
        n
    });
    // Multiplying by an odd constant spreads consecutive numbers over all bits.
    n.wrapping_mul(0x9E37_79B1).to_be_bytes()
}

thread_local! {
    static MASKS: Cell<u32> = const { Cell::new(1) };
}

/// Starts the masking keys of this thread again from the first.
pub fn reset_masks() {
    MASKS.with(|masks| masks.set(1));
}

/// A frame header as the bytes go on the wire: `first_byte` as given (FIN,
/// RSV bits, opcode), the length in the shortest of its three forms, then the
/// masking key if there is one.
pub fn frame_header(first_byte: u8, payload_len: u64, mask: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut bytes = vec![first_byte];
    if payload_len <= 125 {
        bytes.push(mask_bit | payload_len as u8);
    } else if payload_len <= 0xFFFF {
        bytes.push(mask_bit | 126);
        bytes.extend_from_slice(&(payload_len as u16).to_be_bytes());
    } else {
        bytes.push(mask_bit | 127);
        bytes.extend_from_slice(&payload_len.to_be_bytes());
    }
    if let Some(mask) = mask {
        bytes.extend_from_slice(&mask);
    }
    bytes
}

/// A masked frame, as a client sends it, whose first byte is `first_byte`
/// exactly: `FIN | TEXT`, or `FIN | RSV1 | TEXT`, or `0x83`.
pub fn client_frame_raw(first_byte: u8, payload: &[u8]) -> Vec<u8> {
    let mask = next_mask();
    let mut bytes = frame_header(first_byte, payload.len() as u64, Some(mask));
    bytes.extend(
        payload
            .iter()
            .enumerate()
            .map(|(i, byte)| byte ^ mask[i % 4]),
    );
    bytes
}

/// A masked frame, as a client sends it. `opcode` may be any 4-bit value.
pub fn client_frame(fin: bool, opcode: u8, payload: &[u8]) -> Vec<u8> {
    let fin_bit = if fin { FIN } else { 0 };
    client_frame_raw(fin_bit | opcode, payload)
}

/// Sends one masked frame (see [`client_frame`]).
#[track_caller]
pub fn send_frame(stream: &mut Conn, fin: bool, opcode: u8, payload: &[u8]) {
    send_raw(stream, &client_frame(fin, opcode, payload));
}

/// Sends bytes as they are.
#[track_caller]
pub fn send_raw(stream: &mut Conn, bytes: &[u8]) {
    if let Err(error) = stream.write_all(bytes) {
        panic!(
            "could not send to the server: {error} (it stopped reading, or closed the connection)"
        );
    }
}

/// Sends `bytes` in pieces of `chop_size` bytes, each in its own write and,
/// with Nagle's algorithm off, its own TCP segment: the server must put
/// frames together from whatever pieces arrive (Autobahn calls this
/// "chopping").
#[track_caller]
pub fn send_chopped(stream: &mut Conn, bytes: &[u8], chop_size: usize) {
    stream.set_nodelay(true).unwrap();
    for piece in bytes.chunks(chop_size) {
        send_raw(stream, piece);
    }
}

/// Sends `bytes` in the pieces `sizes` gives (the rest in a last piece),
/// with a pause after each, so that the server reads them one by one.
#[track_caller]
pub fn send_in_pieces(stream: &mut Conn, bytes: &[u8], sizes: &[usize], pause: Duration) {
    stream.set_nodelay(true).unwrap();
    let mut rest = bytes;
    for size in sizes {
        let (piece, after) = rest.split_at((*size).min(rest.len()));
        send_raw(stream, piece);
        thread::sleep(pause);
        rest = after;
    }
    if !rest.is_empty() {
        send_raw(stream, rest);
    }
}

/// A frame from the server.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

impl Frame {
    /// The status code of a close frame, if it has one.
    pub fn close_code(&self) -> Option<u16> {
        match self.payload[..] {
            [high, low, ..] if self.opcode == CLOSE => Some(u16::from_be_bytes([high, low])),
            _ => None,
        }
    }

    /// The reason of a close frame (lossy: a check shows it, never trusts it).
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }

    /// The payload of a text frame, as text (lossy: for messages).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }
}

/// One line for a transcript: `Text "Hello"`, `Text (not FIN) "Hel"`,
/// `Binary [00, 01]`, `Binary 256 bytes`, `Close 1000 "bye"`.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", opcode_name(self.opcode))?;
        if !self.fin {
            write!(f, " (not FIN)")?;
        }
        if let Some(code) = self.close_code() {
            return write!(f, " {code} {:?}", self.close_reason());
        }
        match std::str::from_utf8(&self.payload) {
            Ok(text) if text.len() <= 80 && !text.contains(char::is_control) => {
                write!(f, " {text:?}")
            }
            _ if self.payload.len() <= 16 => write!(f, " {:02x?}", self.payload),
            _ => write!(f, " {} bytes", self.payload.len()),
        }
    }
}

/// `Text`, `Close`, or `Opcode 0x3` for the reserved ones.
pub fn opcode_name(opcode: u8) -> String {
    match opcode {
        CONTINUATION => "Continuation".to_string(),
        TEXT => "Text".to_string(),
        BINARY => "Binary".to_string(),
        CLOSE => "Close".to_string(),
        PING => "Ping".to_string(),
        PONG => "Pong".to_string(),
        other => format!("Opcode 0x{other:X}"),
    }
}

/// Reads one frame from the server, and checks what RFC 6455 asks of every
/// frame a server sends: not masked, no RSV bits (no extension was agreed).
/// The end of the stream, mid-frame or not, is an `UnexpectedEof` error.
#[track_caller]
pub fn try_read_frame(stream: &mut Conn) -> io::Result<Frame> {
    // Pings skipped count against the wait: a server that pings without
    // end must not keep a check waiting for ever.
    let started = std::time::Instant::now();
    let wait = stream.stream.read_timeout()?.unwrap_or(patience());
    loop {
        let frame = try_read_any_frame(stream)?;
        if !(stream.answers_pings && frame.opcode == PING && frame.fin) {
            return Ok(frame);
        }
        send_frame(stream, true, PONG, &frame.payload);
        if started.elapsed() >= wait {
            return Err(io::ErrorKind::TimedOut.into());
        }
    }
}

/// [`try_read_frame`], pings and all.
#[track_caller]
fn try_read_any_frame(stream: &mut Conn) -> io::Result<Frame> {
    let mut head = [0; 2];
    stream.read_exact(&mut head)?;
    let [first, second] = head;
    assert!(
        first & (RSV1 | RSV2 | RSV3) == 0,
        "a server frame with RSV bits set (first byte {first:#04x}): no extension was agreed, \
         so they must be 0 (RFC 6455, section 5.2)"
    );
    assert!(
        second & 0x80 == 0,
        "a masked server frame (second byte {second:#04x}): a server never masks \
         (RFC 6455, section 5.1)"
    );
    let payload_len = match second & 0x7F {
        126 => {
            let mut bytes = [0; 2];
            stream.read_exact(&mut bytes)?;
            u64::from(u16::from_be_bytes(bytes))
        }
        127 => {
            let mut bytes = [0; 8];
            stream.read_exact(&mut bytes)?;
            u64::from_be_bytes(bytes)
        }
        len => u64::from(len),
    };
    assert!(
        payload_len <= 64 << 20,
        "a server frame announcing {payload_len} bytes: no message of the checks is that long"
    );
    let mut payload = vec![0; payload_len as usize];
    stream.read_exact(&mut payload)?;
    stream.end_of_unit();
    Ok(Frame {
        fin: first & FIN != 0,
        opcode: first & 0x0F,
        payload,
    })
}

/// Reads one frame from the server (see [`try_read_frame`]); fails the
/// check if none comes within the read timeout.
#[track_caller]
pub fn read_frame(stream: &mut Conn) -> Frame {
    match try_read_frame(stream) {
        Ok(frame) => frame,
        Err(error) => panic!(
            "expected a frame from the server: {}",
            what_happened(&error)
        ),
    }
}

/// Reads the next frame, which must be a close frame.
#[track_caller]
pub fn read_close(stream: &mut Conn) -> Frame {
    let frame = read_frame(stream);
    assert!(
        frame.opcode == CLOSE,
        "expected a close frame, got {frame:?}"
    );
    frame
}

/// Reads the next frame, which must be a text message; returns its text.
#[track_caller]
pub fn read_text(stream: &mut Conn) -> String {
    let frame = read_frame(stream);
    assert!(
        frame.opcode == TEXT && frame.fin,
        "expected a text message, got {frame:?}"
    );
    match String::from_utf8(frame.payload) {
        Ok(text) => text,
        Err(error) => panic!("a text message that is not UTF-8: {error}"),
    }
}

/// Checks that the server closes the TCP connection cleanly, with nothing
/// more sent before: the end of the stream, not a reset. Then closes our
/// side too, as a client does when the server has hung up.
#[track_caller]
pub fn expect_end_of_stream(stream: &mut Conn) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => panic!(
            "the server reset the connection instead of closing it (closing a socket \
             with unread data does that, and the reset can destroy the last frames)"
        ),
        Err(error) => panic!(
            "expected the server to close the connection: {}",
            what_happened(&error)
        ),
    }
    assert!(
        rest.is_empty(),
        "expected the end of the stream, but {} more bytes came",
        rest.len()
    );
    let _ = stream.shutdown(Shutdown::Write);
}

/// The whole closing handshake, started by the client: sends a close frame
/// with `code`, expects the same code back, then the end of the stream.
#[track_caller]
pub fn close_with(stream: &mut Conn, code: u16) {
    send_frame(stream, true, CLOSE, &code.to_be_bytes());
    let close = read_close(stream);
    assert!(
        close.close_code() == Some(code),
        "a close with code {code} is answered with the same code; got {close:?}"
    );
    expect_end_of_stream(stream);
}

/// Expects the server to fail the connection: the next frame is a close
/// frame with `code`. Answers it, as a client should, and checks that the
/// server then closes the TCP connection (and answered nothing else).
#[track_caller]
pub fn expect_close(stream: &mut Conn, code: u16) {
    let close = read_close(stream);
    assert!(
        close.close_code() == Some(code),
        "expected a close frame with code {code}, got {close:?}"
    );
    send_frame(stream, true, CLOSE, &code.to_be_bytes());
    expect_end_of_stream(stream);
}

/// Checks that nothing arrives from the server during `wait`: no frame, and
/// no end of stream either.
#[track_caller]
pub fn expect_silence(stream: &mut Conn, wait: Duration) {
    let until = std::time::Instant::now() + wait;
    let mut byte = [0];
    let result = loop {
        let left = until.saturating_duration_since(std::time::Instant::now());
        stream
            .set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        // A ping that the connection answers by itself is not news.
        let result = match stream.stream.peek(&mut byte) {
            Ok(1) if stream.answers_pings && byte[0] == FIN | PING => {
                stream.set_read_timeout(Some(patience())).unwrap();
                match try_read_any_frame(stream) {
                    Ok(ping) => send_frame(stream, true, PONG, &ping.payload),
                    Err(error) => break Err(error),
                }
                continue;
            }
            Ok(_) => stream.read(&mut byte),
            Err(error) => Err(error),
        };
        break result;
    };
    stream.set_read_timeout(Some(patience())).unwrap();
    match result {
        Err(error)
            if error.kind() == io::ErrorKind::WouldBlock
                || error.kind() == io::ErrorKind::TimedOut => {}
        Ok(0) => panic!("expected nothing for now, but the server closed the connection"),
        Ok(_) => panic!(
            "expected nothing for now, but the server sent {:#04x}",
            byte[0]
        ),
        Err(error) => panic!("{error}"),
    }
}

/// [`expect_silence`] on several connections at once, for `wait`: each
/// answers the server's pings meanwhile (if it does, see
/// [`answering_pings`]), which a connection left alone for longer than the
/// server's ping interval and idle timeout could not.
#[track_caller]
pub fn expect_silence_on_all(streams: &mut [&mut Conn], wait: Duration) {
    let until = std::time::Instant::now() + wait;
    let slice = Duration::from_millis(20);
    while std::time::Instant::now() < until {
        for stream in streams.iter_mut() {
            expect_silence(stream, slice);
        }
    }
}

/// Reads until the connection ends, and says whether it did (an end of
/// stream or a reset) rather than time out; returns what came before.
pub fn read_until_dropped(stream: &mut Conn) -> (bool, usize) {
    let mut sink = Vec::new();
    let ended = match stream.read_to_end(&mut sink) {
        Ok(_) => true,
        Err(error) => error.kind() == io::ErrorKind::ConnectionReset,
    };
    (ended, sink.len())
}

// ---------------------------------------------------------------------------
// Transcripts
// ---------------------------------------------------------------------------

/// A conversation written down as it goes, one line per message: a client
/// sending (`ann -> ...`), a client receiving (`  ann <- ...`), or a note.
/// Checks keep the reference's transcript (see [`crate::keep`]) as a
/// snapshot that a reader can follow, and the book shows.
#[derive(Default)]
pub struct Transcript {
    lines: Vec<String>,
}

impl Transcript {
    pub fn new() -> Transcript {
        Transcript::default()
    }

    /// A line of its own: `cat's connection drops`.
    pub fn note(&mut self, line: impl Into<String>) {
        self.lines.push(line.into());
    }

    /// Connects `who` and does the opening handshake.
    #[track_caller]
    pub fn open(&mut self, who: &str, address: SocketAddr) -> Conn {
        let stream = ws_handshake(address);
        self.note(format!("{who} connects: 101 Switching Protocols"));
        stream
    }

    /// `who` sends one masked frame.
    #[track_caller]
    pub fn send(&mut self, who: &str, stream: &mut Conn, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = Frame {
            fin,
            opcode,
            payload: payload.to_vec(),
        };
        self.note(format!("{who} -> {}", shown(&frame)));
        send_frame(stream, fin, opcode, payload);
    }

    /// `who` sends a text message.
    #[track_caller]
    pub fn send_text(&mut self, who: &str, stream: &mut Conn, text: &str) {
        self.send(who, stream, true, TEXT, text.as_bytes());
    }

    /// `who` sends bytes as they are, written down as `what`.
    #[track_caller]
    pub fn send_raw(&mut self, who: &str, stream: &mut Conn, what: &str, bytes: &[u8]) {
        self.note(format!("{who} -> {what}"));
        send_raw(stream, bytes);
    }

    /// `who` reads one frame.
    #[track_caller]
    pub fn receive(&mut self, who: &str, stream: &mut Conn) -> Frame {
        let frame = read_frame(stream);
        self.received(who, &shown(&frame));
        frame
    }

    /// Writes down that `who` received `what` (read by the caller).
    #[track_caller]
    pub fn received(&mut self, who: &str, what: &str) {
        self.note(format!("  {who} <- {what}"));
    }

    /// `who` reads the end of the stream: the server closed the connection.
    #[track_caller]
    pub fn expect_end_of_stream(&mut self, who: &str, stream: &mut Conn) {
        expect_end_of_stream(stream);
        self.received(
            who,
            "the end of the stream: the server has closed the connection",
        );
    }

    /// The conversation so far, one line per message.
    pub fn text(&self) -> String {
        self.lines.join("\n")
    }

    /// Keeps the transcript as this check's snapshot (see [`crate::keep`]).
    pub fn keep(&self) {
        crate::keep(self.text());
    }
}

/// How a transcript shows a frame: a text message that is a JSON object as
/// its text, anything else as [`Frame`]'s `Debug` (`Text "Hello"`).
fn shown(frame: &Frame) -> String {
    if frame.opcode == TEXT
        && frame.fin
        && let Ok(text) = std::str::from_utf8(&frame.payload)
        && text.starts_with('{')
        && text.ends_with('}')
    {
        return text.to_string();
    }
    format!("{frame:?}")
}
