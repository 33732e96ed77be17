//! Helpers shared by the integration tests.
//!
//! The test client here is written independently of the stages' own code on
//! purpose: a test that used the server's encoder to check the server's
//! decoder could not catch a mistake they both make.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread;
use std::time::Duration;

/// How long a test waits for the server before it fails instead of hanging.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Starts a stage's `serve` function on an ephemeral port of 127.0.0.1 and
/// returns the address it listens on.
///
/// The server runs on a background thread of the test process and stops when
/// the test binary exits; each test gets a server of its own, so tests can run
/// in parallel without sharing state or depending on port 8080 being free.
pub fn start_server(serve: fn(TcpListener) -> io::Result<()>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    let address = listener.local_addr().expect("local address");
    thread::spawn(move || serve(listener));
    address
}

/// Connects to `address` with read and write timeouts of [`PATIENCE`].
pub fn connect(address: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(address).expect("connect to the test server");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    stream.set_write_timeout(Some(PATIENCE)).unwrap();
    stream
}

/// Sends `request` as it is, then reads until the server closes the connection.
pub fn exchange(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(address);
    stream.write_all(request).unwrap();
    read_to_close(&mut stream)
}

/// Sends `request` as it is, then closes our side of the connection (a
/// half-close: the server reads the end of the stream, and may still write),
/// then reads until the server closes its side too. A server that took the
/// end of our stream for the end of the conversation drops the answer.
pub fn exchange_half_closed(address: SocketAddr, request: &[u8]) -> String {
    let mut stream = connect(address);
    stream.write_all(request).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    read_to_close(&mut stream)
}

/// Checks, for a stage that speaks WebSocket, that a client that sends its
/// whole request and then closes its side still reads the whole answer:
/// the echo of a `GET`, and the 400 of an upgrade without a key.
pub fn half_closing_clients_get_their_answers(address: SocketAddr) {
    let request = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    let response = exchange_half_closed(address, request);
    assert_eq!(status_line(&response), "HTTP/1.1 200 OK", "{response:?}");
    assert!(response.ends_with("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
    let key_line = format!("Sec-WebSocket-Key: {RFC_KEY}\r\n");
    let no_key = upgrade_request(address).replace(&key_line, "");
    let response = exchange_half_closed(address, no_key.as_bytes());
    assert_eq!(
        status_line(&response),
        "HTTP/1.1 400 Bad Request",
        "{response:?}"
    );
}

/// Reads until the server closes the connection (or [`PATIENCE`] runs out,
/// which fails the test).
pub fn read_to_close(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    match stream.read_to_end(&mut bytes) {
        Ok(_) => {}
        // The server may reset a connection that still has unread bytes.
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => {}
        Err(error) => panic!("reading the response: {error}"),
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// The status line of an HTTP response: `HTTP/1.1 200 OK`.
pub fn status_line(response: &str) -> &str {
    response.lines().next().unwrap_or("")
}

// ---------------------------------------------------------------------------
// A minimal WebSocket client (RFC 6455), written from the RFC for the tests.
//
// It shares no code with the stages on purpose, and it does what a test needs
// rather than what a polite client does: it can send reserved opcodes, set
// RSV bits, lie about lengths, stop in the middle of a frame. What it reads
// from a server it checks against the RFC: never masked, no RSV bits.
// ---------------------------------------------------------------------------

/// The `Sec-WebSocket-Key` of RFC 6455, section 1.3 ...
pub const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
/// ... and the `Sec-WebSocket-Accept` a correct server answers it with.
pub const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// Opcodes as plain numbers, so that tests can send the reserved ones too.
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

/// The upgrade request [`ws_handshake`] sends, with the key of the RFC.
pub fn upgrade_request(address: SocketAddr) -> String {
    format!(
        "GET / HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {RFC_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Connects to `address` and does the opening handshake: sends
/// [`upgrade_request`], and checks that the answer is a `101` with the right
/// `Sec-WebSocket-Accept`. Returns the stream, ready for frames.
pub fn ws_handshake(address: SocketAddr) -> TcpStream {
    let mut stream = connect(address);
    // Without this, Nagle's algorithm holds a small frame back until the
    // server acknowledges the previous one, which a server that has nothing
    // to answer yet (a fragment, say) delays by up to 40 ms.
    stream.set_nodelay(true).unwrap();
    stream
        .write_all(upgrade_request(address).as_bytes())
        .unwrap();
    check_101(&read_http_head(&mut stream));
    stream
}

/// Reads an HTTP response head, up to and including the empty line, one
/// byte at a time: whatever follows (frames) stays unread in the stream.
pub fn read_http_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0];
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            Ok(_) => panic!(
                "the server closed the connection during the handshake, after {:?}",
                String::from_utf8_lossy(&head)
            ),
            Err(error) => panic!("reading the handshake response: {error}"),
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Checks a response head: `101 Switching Protocols`, the upgrade headers,
/// and [`RFC_ACCEPT`] for [`RFC_KEY`].
pub fn check_101(head: &str) {
    assert_eq!(
        status_line(head),
        "HTTP/1.1 101 Switching Protocols",
        "{head}"
    );
    let header = |name: &str| {
        head.lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(found, _)| found.trim().eq_ignore_ascii_case(name))
            .map(|(_, value)| value.trim().to_string())
    };
    assert!(
        header("Upgrade").is_some_and(|value| value.eq_ignore_ascii_case("websocket")),
        "{head}"
    );
    assert!(
        header("Connection").is_some_and(|value| value.to_ascii_lowercase().contains("upgrade")),
        "{head}"
    );
    assert_eq!(
        header("Sec-WebSocket-Accept").as_deref(),
        Some(RFC_ACCEPT),
        "{head}"
    );
}

/// A different masking key for every frame, so that a server which ignored
/// the key, or used it at the wrong offset, would read garbage.
pub fn next_mask() -> [u8; 4] {
    static COUNTER: AtomicU32 = AtomicU32::new(1);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    // Multiplying by an odd constant spreads consecutive numbers over all bits.
    n.wrapping_mul(0x9E37_79B1).to_be_bytes()
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
pub fn send_frame(stream: &mut TcpStream, fin: bool, opcode: u8, payload: &[u8]) {
    send_raw(stream, &client_frame(fin, opcode, payload));
}

/// Sends bytes as they are.
pub fn send_raw(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("sending to the server");
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

    /// The reason of a close frame (lossy: a test shows it, never trusts it).
    pub fn close_reason(&self) -> String {
        String::from_utf8_lossy(self.payload.get(2..).unwrap_or_default()).into_owned()
    }
}

/// One line for a transcript: `Text "Hello"`, `Text (not FIN) "Hel"`,
/// `Binary [00, 01]`, `Binary 256 bytes`, `Close 1000 "bye"`.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let name = match self.opcode {
            CONTINUATION => "Continuation".to_string(),
            TEXT => "Text".to_string(),
            BINARY => "Binary".to_string(),
            CLOSE => "Close".to_string(),
            PING => "Ping".to_string(),
            PONG => "Pong".to_string(),
            other => format!("Opcode 0x{other:X}"),
        };
        write!(f, "{name}")?;
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

/// Reads one frame from the server, and checks what RFC 6455 asks of every
/// frame a server sends: not masked, no RSV bits (no extension was agreed).
/// The end of the stream, mid-frame or not, is an `UnexpectedEof` error.
pub fn try_read_frame(stream: &mut TcpStream) -> io::Result<Frame> {
    let mut head = [0; 2];
    stream.read_exact(&mut head)?;
    let [first, second] = head;
    assert_eq!(
        first & (RSV1 | RSV2 | RSV3),
        0,
        "a server frame with RSV bits set"
    );
    assert_eq!(second & 0x80, 0, "a masked server frame");
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
        "a server frame of {payload_len} bytes"
    );
    let mut payload = vec![0; payload_len as usize];
    stream.read_exact(&mut payload)?;
    Ok(Frame {
        fin: first & FIN != 0,
        opcode: first & 0x0F,
        payload,
    })
}

/// Reads one frame from the server (see [`try_read_frame`]); fails the test
/// if none comes within [`PATIENCE`].
pub fn read_frame(stream: &mut TcpStream) -> Frame {
    try_read_frame(stream).unwrap_or_else(|error| panic!("expected a frame: {error}"))
}

/// Reads the next frame, which must be a close frame.
pub fn read_close(stream: &mut TcpStream) -> Frame {
    let frame = read_frame(stream);
    assert_eq!(frame.opcode, CLOSE, "expected a close frame, got {frame:?}");
    frame
}

/// Checks that the server closes the TCP connection cleanly, with nothing
/// more sent before: the end of the stream, not a reset. Then closes our
/// side too, as a client does when the server has hung up.
pub fn expect_end_of_stream(stream: &mut TcpStream) {
    let mut rest = Vec::new();
    match stream.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(error) if error.kind() == io::ErrorKind::ConnectionReset => panic!(
            "the server reset the connection instead of closing it (closing a socket \
             with unread data does that, and the reset can destroy the last frames)"
        ),
        Err(error) => panic!("the server did not close the connection: {error}"),
    }
    assert!(
        rest.is_empty(),
        "{} more bytes after the close frame",
        rest.len()
    );
    stream.shutdown(Shutdown::Write).unwrap();
}

/// The whole closing handshake, started by the client: sends a close frame
/// with `code`, expects the same code back, then the end of the stream.
pub fn close_with(stream: &mut TcpStream, code: u16) {
    send_frame(stream, true, CLOSE, &code.to_be_bytes());
    assert_eq!(read_close(stream).close_code(), Some(code));
    expect_end_of_stream(stream);
}

/// Checks that nothing arrives from the server during `wait`: no frame, and
/// no end of stream either.
pub fn expect_silence(stream: &mut TcpStream, wait: Duration) {
    stream.set_read_timeout(Some(wait)).unwrap();
    let mut byte = [0];
    let result = stream.read(&mut byte);
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    match result {
        Err(error)
            if error.kind() == io::ErrorKind::WouldBlock
                || error.kind() == io::ErrorKind::TimedOut => {}
        Ok(0) => panic!("the server closed the connection"),
        Ok(_) => panic!("the server sent {:#04x}", byte[0]),
        Err(error) => panic!("{error}"),
    }
}

/// A WebSocket client that writes the conversation down as it goes, one line
/// per frame, for a snapshot a reader can follow.
pub struct Conversation {
    pub stream: TcpStream,
    lines: Vec<String>,
}

impl Conversation {
    /// Connects and does the handshake (see [`ws_handshake`]).
    pub fn open(address: SocketAddr) -> Conversation {
        Conversation {
            stream: ws_handshake(address),
            lines: vec!["handshake: 101 Switching Protocols".to_string()],
        }
    }

    /// Sends one masked frame (see [`client_frame`]).
    pub fn send(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let frame = Frame {
            fin,
            opcode,
            payload: payload.to_vec(),
        };
        self.lines.push(format!("client: {frame:?}"));
        send_frame(&mut self.stream, fin, opcode, payload);
    }

    /// Sends bytes as they are, written down as `what`.
    pub fn send_raw(&mut self, what: &str, bytes: &[u8]) {
        self.lines.push(format!("client: {what}"));
        send_raw(&mut self.stream, bytes);
    }

    /// Reads one frame from the server (see [`read_frame`]).
    pub fn receive(&mut self) -> Frame {
        let frame = read_frame(&mut self.stream);
        self.lines.push(format!("server: {frame:?}"));
        frame
    }

    /// Checks that the server closes the TCP connection, and nothing else.
    pub fn expect_end_of_stream(&mut self) {
        expect_end_of_stream(&mut self.stream);
        self.lines
            .push("server: closes the TCP connection".to_string());
    }

    /// The conversation so far, one line per frame.
    pub fn transcript(&self) -> String {
        self.lines.join("\n")
    }
}

/// Sends `bytes` in pieces of `chop_size` bytes, each in its own write and,
/// with Nagle's algorithm off, its own TCP segment: the server must put
/// frames together from whatever pieces arrive (Autobahn calls this
/// "chopping").
pub fn send_chopped(stream: &mut TcpStream, bytes: &[u8], chop_size: usize) {
    stream.set_nodelay(true).unwrap();
    for piece in bytes.chunks(chop_size) {
        send_raw(stream, piece);
    }
}

/// Expects the server to fail the connection: the next frame is a close
/// frame with `code`. Answers it, as a client should, and checks that the
/// server then closes the TCP connection (and answered nothing else).
pub fn expect_close(stream: &mut TcpStream, code: u16) {
    let close = read_close(stream);
    assert_eq!(close.close_code(), Some(code), "{close:?}");
    send_frame(stream, true, CLOSE, &code.to_be_bytes());
    expect_end_of_stream(stream);
}

/// A stage's own program, as `cargo run -p PACKAGE -- 127.0.0.1:0` starts
/// it, with its standard output in a pipe: what a reader runs, `main.rs`
/// and its log included. Dropping it kills the process.
pub struct Program {
    pub child: std::process::Child,
    pub address: SocketAddr,
    /// The read end of the pipe the program logs to.
    pub stdout: Option<io::BufReader<std::process::ChildStdout>>,
}

impl Program {
    /// Builds the package's binary (once per test process) and starts it on
    /// an ephemeral port, which it reads from the first line of the log.
    pub fn start(package: &str) -> Program {
        let mut child = std::process::Command::new(binary(package))
            .arg("127.0.0.1:0")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("start the stage's program");
        let mut stdout = io::BufReader::new(child.stdout.take().unwrap());
        let mut first_line = String::new();
        io::BufRead::read_line(&mut stdout, &mut first_line).unwrap();
        let address = first_line
            .trim()
            .strip_prefix("Listening on http://")
            .and_then(|address| address.parse().ok())
            .unwrap_or_else(|| panic!("not an address: {first_line:?}"));
        Program {
            child,
            address,
            stdout: Some(stdout),
        }
    }

    /// Whether the program is still running.
    pub fn is_running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The path of a package's binary, built by `cargo build` the first time it
/// is asked for: the binaries of the stages are not dependencies of the
/// tests, so `cargo test` does not build them.
fn binary(package: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    // The test runs from target/debug/deps/; binaries are in target/debug/.
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let mut built = BUILT
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if !built.iter().any(|name| name == package) {
        let cargo = std::env::var("CARGO").unwrap_or("cargo".to_string());
        let status = std::process::Command::new(cargo)
            .args(["build", "--quiet", "--bin", package, "-p", package])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
        built.push(package.to_string());
    }
    profile_dir.join(format!("{package}{}", std::env::consts::EXE_SUFFIX))
}
