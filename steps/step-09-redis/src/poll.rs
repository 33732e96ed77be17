//! Waiting for many sockets at once: `poll(2)`, the one system call stage
//! 6 added.
//!
//! Rust's standard library can wait for one socket (a blocking read), but
//! not for "whichever of these ten thousand sockets has something first".
//! The C library that every Rust program on unix already links can: `poll`.
//! We declare it the way C's `<poll.h>` does, and call it. No crate needed.
//!
//! Stage 7 waits with epoll where there is one (Linux), and with this
//! everywhere else: [`PollList`] keeps the list that epoll keeps in the
//! kernel, and hands all of it to `poll` on every wait.

// ANCHOR: not_unix
// A Windows build stops here, with a reason: its sockets are not file
// descriptors, and its `poll` is called `WSAPoll` (see chapter 6).
#[cfg(not(unix))]
compile_error!(
    "stage 7 calls poll(2) or epoll(7), which need a unix system (Linux, macOS, the BSDs)"
);
// ANCHOR_END: not_unix

use crate::interest::{Event, Interest, InterestList, Token};
use std::collections::HashMap;
use std::ffi::{c_int, c_short};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, RawFd};
use std::time::Duration;

// ANCHOR: pollfd
/// One entry of the array that `poll` reads and fills in: a socket, what we
/// wait for, and what happened. `#[repr(C)]` lays its fields out exactly as
/// C's `struct pollfd`, in this order, with these sizes: the system reads
/// our memory as that struct, so Rust must not reorder anything.
#[repr(C)]
#[derive(Debug, PartialEq)]
pub struct PollFd {
    /// The socket's file descriptor: the number the system knows it by.
    fd: c_int,
    /// What we wait for: [`POLLIN`], [`POLLOUT`], both, or nothing.
    events: c_short,
    /// What is ready, written by `poll` before it returns.
    revents: c_short,
}

/// There is something to read: bytes, the end of the stream, or (on a
/// listener) a connection waiting to be accepted.
pub const POLLIN: c_short = 0x001;
/// There is room in the socket's buffer to write without waiting.
pub const POLLOUT: c_short = 0x004;
// ANCHOR_END: pollfd

// ANCHOR: extern
/// The type of `poll`'s second argument, the number of entries: `nfds_t` in
/// C, which is not the same size everywhere.
#[cfg(target_os = "linux")]
type PollCount = std::ffi::c_ulong;
#[cfg(not(target_os = "linux"))]
type PollCount = std::ffi::c_uint;

unsafe extern "C" {
    /// `int poll(struct pollfd *fds, nfds_t nfds, int timeout);`
    ///
    /// Sleeps until one of the `nfds` sockets at `fds` is ready, or
    /// `timeout` milliseconds pass (-1: no limit). Returns how many are
    /// ready, or -1 with `errno` set.
    fn poll(fds: *mut PollFd, nfds: PollCount, timeout: c_int) -> c_int;
}
// ANCHOR_END: extern

// ANCHOR: poll_fd
impl PollFd {
    /// An entry that waits for `events` on `socket`.
    pub fn new(socket: &impl AsRawFd, events: c_short) -> PollFd {
        PollFd {
            fd: socket.as_raw_fd(),
            events,
            revents: 0,
        }
    }

    /// Whether `poll` found the socket ready. Besides what we asked for, it
    /// always reports errors and hang-ups, which a read will then tell us
    /// about: any of them means "go and look".
    pub fn is_ready(&self) -> bool {
        self.revents != 0
    }
}
// ANCHOR_END: poll_fd

// ANCHOR: wait
/// Sleeps until at least one socket of `sockets` is ready, or `timeout`
/// passes (`None`: for as long as it takes). Returns how many are ready.
pub fn wait(sockets: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    let timeout_ms: c_int = match timeout {
        // Rounded up: waking a little before a deadline would find it not
        // passed yet, and poll again, and again, until it has.
        Some(timeout) => {
            c_int::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX)
        }
        None => -1,
    };
    // SAFETY: `poll` reads and writes `sockets.len()` entries from the
    // pointer we give it, so it must point at that many `PollFd`s, laid out
    // as C's `struct pollfd` (`#[repr(C)]`) and not used by anything else
    // meanwhile. A `&mut [PollFd]` is exactly that, and stays borrowed until
    // `poll` returns. The length fits `PollCount`: nobody has 2^32 sockets.
    let ready = unsafe { poll(sockets.as_mut_ptr(), sockets.len() as PollCount, timeout_ms) };
    if ready < 0 {
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::Interrupted {
            return Ok(0); // a signal woke us: nothing is ready, wait again
        }
        return Err(error);
    }
    Ok(ready as usize)
}
// ANCHOR_END: wait

// ANCHOR: poll_list
/// The interest list for `poll`, which keeps none of its own: we keep it,
/// and every wait hands the whole array to the system, which walks it, and
/// then we walk it too for the ready entries, as stage 6 did. The fallback
/// where there is no epoll (macOS, the BSDs), and on Linux when asked for.
#[derive(Default)]
pub struct PollList {
    /// The array `poll` reads, one entry per socket, in no order.
    sockets: Vec<PollFd>,
    /// `tokens[i]` is the token of `sockets[i]`.
    tokens: Vec<Token>,
    /// Where each socket's entry is, by its descriptor.
    positions: HashMap<RawFd, usize>,
}

/// What we wait for, in poll's flags.
fn poll_events(interest: Interest) -> c_short {
    let mut events = 0;
    if interest.read {
        events |= POLLIN;
    }
    if interest.write {
        events |= POLLOUT;
    }
    events
}

impl InterestList for PollList {
    fn add(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()> {
        let fd = socket.as_raw_fd();
        if self.positions.contains_key(&fd) {
            return Err(io::ErrorKind::AlreadyExists.into()); // as epoll says
        }
        self.positions.insert(fd, self.sockets.len());
        self.sockets
            .push(PollFd::new(&socket, poll_events(interest)));
        self.tokens.push(token);
        Ok(())
    }

    fn modify(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()> {
        let position = self.position(socket)?;
        self.sockets[position] = PollFd::new(&socket, poll_events(interest));
        self.tokens[position] = token;
        Ok(())
    }

    fn delete(&mut self, socket: BorrowedFd) -> io::Result<()> {
        let position = self.position(socket)?;
        self.positions.remove(&socket.as_raw_fd());
        // The last entry takes the deleted one's place.
        self.sockets.swap_remove(position);
        self.tokens.swap_remove(position);
        if let Some(moved) = self.sockets.get(position) {
            self.positions.insert(moved.fd, position);
        }
        Ok(())
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        wait(&mut self.sockets, timeout)?;
        for (socket, &token) in self.sockets.iter().zip(&self.tokens) {
            if socket.is_ready() {
                events.push(Event {
                    token,
                    readable: socket.revents & !POLLOUT != 0,
                    writable: socket.revents & POLLOUT != 0,
                });
            }
        }
        Ok(())
    }
}

impl PollList {
    fn position(&self, socket: BorrowedFd) -> io::Result<usize> {
        let position = self.positions.get(&socket.as_raw_fd());
        position.copied().ok_or(io::ErrorKind::NotFound.into()) // as epoll says
    }
}
// ANCHOR_END: poll_list

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::net::{TcpListener, TcpStream};
    use std::time::Instant;

    /// A connected pair of sockets on loopback.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (near, far)
    }

    // ANCHOR: layout_test
    #[test]
    fn the_layout_is_c_struct_pollfd() {
        // An int and two shorts, in that order, no padding: 8 bytes.
        assert_eq!(std::mem::size_of::<PollFd>(), 8);
        assert_eq!(std::mem::offset_of!(PollFd, fd), 0);
        assert_eq!(std::mem::offset_of!(PollFd, events), 4);
        assert_eq!(std::mem::offset_of!(PollFd, revents), 6);
    }
    // ANCHOR_END: layout_test

    #[test]
    fn a_silent_socket_is_not_readable_and_times_out() {
        let (near, _far) = pair();
        let mut sockets = [PollFd::new(&near, POLLIN)];
        let started = Instant::now();
        let ready = wait(&mut sockets, Some(Duration::from_millis(50))).unwrap();
        assert_eq!(ready, 0);
        assert!(!sockets[0].is_ready());
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn bytes_make_a_socket_readable() {
        let (near, mut far) = pair();
        far.write_all(b"hello").unwrap();
        let mut sockets = [PollFd::new(&near, POLLIN)];
        // No timeout: this returns because the bytes are there.
        assert_eq!(wait(&mut sockets, None).unwrap(), 1);
        assert_eq!(sockets[0].revents & POLLIN, POLLIN);
    }

    #[test]
    fn a_fresh_socket_is_writable_at_once() {
        // Why a server asks for POLLOUT only while it has output waiting:
        // a socket with room in its buffer is ready to write all the time.
        let (near, _far) = pair();
        let mut sockets = [PollFd::new(&near, POLLOUT)];
        assert_eq!(wait(&mut sockets, None).unwrap(), 1);
        assert_eq!(sockets[0].revents & POLLOUT, POLLOUT);
    }

    #[test]
    fn nothing_asked_nothing_told() {
        let (near, mut far) = pair();
        far.write_all(b"hello").unwrap();
        let mut sockets = [PollFd::new(&near, 0)];
        assert_eq!(
            wait(&mut sockets, Some(Duration::from_millis(20))).unwrap(),
            0
        );
    }

    #[test]
    fn a_waiting_connection_makes_a_listener_readable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut sockets = [PollFd::new(&listener, POLLIN)];
        assert_eq!(wait(&mut sockets, Some(Duration::ZERO)).unwrap(), 0);
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(wait(&mut sockets, None).unwrap(), 1);
        assert!(sockets[0].is_ready());
    }

    // ANCHOR: poll_list_test
    #[test]
    fn the_poll_list_finds_each_socket_by_its_token() {
        use std::os::fd::AsFd;
        let pairs: Vec<(TcpStream, TcpStream)> = (0..3).map(|_| pair()).collect();
        let mut list = PollList::default();
        for (i, (near, _)) in pairs.iter().enumerate() {
            list.add(near.as_fd(), 10 + i, Interest::READ).unwrap();
        }
        // The last entry moves into the place of the first.
        list.delete(pairs[0].0.as_fd()).unwrap();
        (&pairs[2].1).write_all(b"hello").unwrap();
        let mut events = Vec::new();
        list.wait(&mut events, None).unwrap();
        let readable = Event {
            token: 12,
            readable: true,
            writable: false,
        };
        assert_eq!(events, [readable]);
        let write = Interest {
            read: false,
            write: true,
        };
        list.modify(pairs[1].0.as_fd(), 11, write).unwrap();
        list.delete(pairs[2].0.as_fd()).unwrap();
        list.wait(&mut events, None).unwrap();
        let writable = Event {
            token: 11,
            readable: false,
            writable: true,
        };
        assert_eq!(events, [writable]);
        assert!(list.delete(pairs[2].0.as_fd()).is_err());
    }
    // ANCHOR_END: poll_list_test
}
