//! Helpers shared by the integration tests.
//!
//! The test client here is written independently of the stages' own code on
//! purpose: a test that used the server's encoder to check the server's
//! decoder could not catch a mistake they both make.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
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
