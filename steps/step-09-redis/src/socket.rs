//! Two things std's sockets cannot do, done with the C library's calls,
//! declared by hand as `epoll`'s were:
//!
//! - start a TCP connection without waiting for it: std's
//!   `TcpStream::connect` waits until the other side answers (or a minute
//!   or two goes by, if it never does), and the loop must never wait;
//! - listen on a port that other processes listen on too (`SO_REUSEPORT`),
//!   so that several servers on one machine share one address, and the
//!   kernel spreads the new connections over them.
//!
//! Both end in a std type (`TcpStream`, `TcpListener`) built from the
//! descriptor, so that everything after them is ordinary std. The numbers
//! below are Linux's: this module is for Linux only.

use std::ffi::{c_int, c_void};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};

// ANCHOR: extern
unsafe extern "C" {
    /// `int socket(int domain, int type, int protocol);` A new socket's
    /// descriptor, or -1 with `errno` set.
    fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;

    /// `int connect(int fd, const struct sockaddr *addr, socklen_t len);`
    /// On a nonblocking socket: 0 if connected already, or -1 with `errno`
    /// `EINPROGRESS` while the connection is on its way.
    fn connect(fd: c_int, address: *const c_void, len: u32) -> c_int;

    /// `int setsockopt(int fd, int level, int name, const void *value,
    /// socklen_t len);` 0, or -1 with `errno` set.
    fn setsockopt(fd: c_int, level: c_int, name: c_int, value: *const c_void, len: u32) -> c_int;

    /// `int bind(int fd, const struct sockaddr *addr, socklen_t len);`
    fn bind(fd: c_int, address: *const c_void, len: u32) -> c_int;

    /// `int listen(int fd, int backlog);`
    fn listen(fd: c_int, backlog: c_int) -> c_int;
}

const AF_INET: c_int = 2;
const AF_INET6: c_int = 10;
const SOCK_STREAM: c_int = 1;
/// `socket`'s flags: nonblocking from the start, and closed in programs we
/// start (as std opens every descriptor).
const SOCK_NONBLOCK: c_int = 0o4000;
const SOCK_CLOEXEC: c_int = 0o2_000_000;
const SOL_SOCKET: c_int = 1;
const SO_REUSEADDR: c_int = 2;
const SO_REUSEPORT: c_int = 15;
/// `connect`'s "started, not finished" (Linux's number for it).
const EINPROGRESS: i32 = 115;
/// How many connections may wait for `accept`, at most (the kernel caps it
/// at `net.core.somaxconn`).
const BACKLOG: c_int = 1024;
// ANCHOR_END: extern

// ANCHOR: sockaddr
/// C's `struct sockaddr_in`: an IPv4 address and port, both in network
/// byte order (big-endian), padded to 16 bytes.
#[repr(C)]
struct SockaddrIn {
    family: u16,
    port: [u8; 2],
    address: [u8; 4],
    zero: [u8; 8],
}

/// C's `struct sockaddr_in6`: 28 bytes.
#[repr(C)]
struct SockaddrIn6 {
    family: u16,
    port: [u8; 2],
    flow_info: u32,
    address: [u8; 16],
    scope_id: u32,
}

/// An address as `connect` and `bind` read it: a pointer and a length.
enum RawAddress {
    V4(SockaddrIn),
    V6(SockaddrIn6),
}

impl RawAddress {
    fn new(address: SocketAddr) -> RawAddress {
        let port = address.port().to_be_bytes();
        match address {
            SocketAddr::V4(v4) => RawAddress::V4(SockaddrIn {
                family: AF_INET as u16,
                port,
                address: v4.ip().octets(),
                zero: [0; 8],
            }),
            SocketAddr::V6(v6) => RawAddress::V6(SockaddrIn6 {
                family: AF_INET6 as u16,
                port,
                flow_info: v6.flowinfo().to_be(),
                address: v6.ip().octets(),
                scope_id: v6.scope_id(),
            }),
        }
    }

    fn domain(&self) -> c_int {
        match self {
            RawAddress::V4(_) => AF_INET,
            RawAddress::V6(_) => AF_INET6,
        }
    }

    fn as_ptr(&self) -> *const c_void {
        match self {
            RawAddress::V4(address) => (address as *const SockaddrIn).cast(),
            RawAddress::V6(address) => (address as *const SockaddrIn6).cast(),
        }
    }

    fn len(&self) -> u32 {
        match self {
            RawAddress::V4(_) => size_of::<SockaddrIn>() as u32,
            RawAddress::V6(_) => size_of::<SockaddrIn6>() as u32,
        }
    }
}
// ANCHOR_END: sockaddr

/// A new TCP socket for `address`'s family, owned: closed when dropped.
fn new_socket(address: &RawAddress, flags: c_int) -> io::Result<OwnedFd> {
    // SAFETY: socket takes no pointer, and returns a descriptor or -1.
    let fd = unsafe { socket(address.domain(), SOCK_STREAM | SOCK_CLOEXEC | flags, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just opened for us and nothing else owns it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Turns a C return value (-1 for an error) into a `Result`.
fn check(result: c_int) -> io::Result<()> {
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

// ANCHOR: start_connect
/// Starts connecting to `address`, and returns at once: the connection is
/// on its way, or already made (on loopback it can be). The socket becomes
/// *writable* when the attempt is over, however it went: then
/// `stream.take_error()` (`getsockopt(SO_ERROR)`) says whether it failed,
/// and why. Until then, reads and writes fail with `WouldBlock` or
/// `NotConnected`.
pub fn start_connect(address: SocketAddr) -> io::Result<TcpStream> {
    use std::os::fd::AsRawFd;
    let raw = RawAddress::new(address);
    let fd = new_socket(&raw, SOCK_NONBLOCK)?;
    // SAFETY: the pointer and the length describe `raw`, a `sockaddr_in`
    // or `sockaddr_in6` laid out as C's, alive until the call returns;
    // connect only reads it. The descriptor is open: we own it.
    let result = unsafe { connect(fd.as_raw_fd(), raw.as_ptr(), raw.len()) };
    if result < 0 {
        let error = io::Error::last_os_error();
        if error.raw_os_error() != Some(EINPROGRESS) {
            return Err(error); // refused at once, for example
        }
    }
    Ok(TcpStream::from(fd))
}
// ANCHOR_END: start_connect

// ANCHOR: bind_shared
/// Listens on `address` as `TcpListener::bind` does, but with
/// `SO_REUSEPORT` set before `bind`: every process that does the same (as
/// the same user) may listen on the same port, and the kernel hands each
/// new connection to one of them. Without it, the second server would fail
/// with "address in use". The option must be set on every one of them,
/// which is also why an ordinary second `bind` still fails: a server
/// started twice by mistake is not silently shared.
pub fn bind_shared(address: SocketAddr) -> io::Result<TcpListener> {
    use std::os::fd::AsRawFd;
    let raw = RawAddress::new(address);
    let fd = new_socket(&raw, 0)?;
    let on: c_int = 1;
    for option in [SO_REUSEADDR, SO_REUSEPORT] {
        // SAFETY: the pointer and length describe `on`, a C int alive
        // until the call returns; setsockopt only reads it.
        let result = unsafe {
            setsockopt(
                fd.as_raw_fd(),
                SOL_SOCKET,
                option,
                (&on as *const c_int).cast(),
                size_of::<c_int>() as u32,
            )
        };
        check(result)?;
    }
    // SAFETY: as in `start_connect`: `raw` is a C address, read only.
    check(unsafe { bind(fd.as_raw_fd(), raw.as_ptr(), raw.len()) })?;
    // SAFETY: listen takes no pointer; the descriptor is ours and open.
    check(unsafe { listen(fd.as_raw_fd(), BACKLOG) })?;
    Ok(TcpListener::from(fd))
}
// ANCHOR_END: bind_shared

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::time::{Duration, Instant};

    #[test]
    fn the_address_structs_are_laid_out_as_in_c() {
        assert_eq!(size_of::<SockaddrIn>(), 16);
        assert_eq!(size_of::<SockaddrIn6>(), 28);
    }

    #[test]
    fn two_listeners_share_a_port_only_if_both_ask() {
        let first = bind_shared("127.0.0.1:0".parse().unwrap()).unwrap();
        let address = first.local_addr().unwrap();
        let second = bind_shared(address).unwrap();
        assert_eq!(second.local_addr().unwrap(), address);
        assert!(
            TcpListener::bind(address).is_err(),
            "std's bind does not share"
        );
    }

    /// Waits, as the loop would not, until the connect is over.
    fn wait_until_connected(stream: &TcpStream) -> io::Result<()> {
        let start = Instant::now();
        while stream.peer_addr().is_err() {
            if let Some(error) = stream.take_error()? {
                return Err(error);
            }
            assert!(start.elapsed() < Duration::from_secs(5));
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    #[test]
    fn a_connect_that_does_not_wait_still_connects() {
        let listener = TcpListener::bind("[::1]:0")
            .or_else(|_| TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let mut stream = start_connect(listener.local_addr().unwrap()).unwrap();
        wait_until_connected(&stream).unwrap();
        let (mut far, _) = listener.accept().unwrap();
        stream.write_all(b"hi").unwrap();
        let mut buffer = [0; 2];
        far.read_exact(&mut buffer).unwrap();
        assert_eq!(&buffer, b"hi");
    }

    #[test]
    fn a_refused_connect_says_so() {
        // A port that was free a moment ago: nobody listens there now.
        let address = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let failed = start_connect(address).and_then(|stream| wait_until_connected(&stream));
        let error = failed.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
    }
}
