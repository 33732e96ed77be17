//! Waiting for many sockets at once, at the cost of the ready ones only:
//! `epoll(7)`, Linux's answer to the cost of `poll(2)`.
//!
//! `poll` takes the whole list of sockets on every call, and the kernel
//! walks all of it to find the ready ones; so does the loop, afterwards.
//! `epoll` keeps the list in the kernel instead, from one call to the next:
//! we add a socket once (`epoll_ctl`), change what we wait for only when it
//! changes, and `epoll_wait` hands back only the sockets that are ready,
//! each with the number we gave it. Three functions of the C library, which
//! we declare as we declared `poll`. No crate needed.

use crate::interest::{Event, Interest, InterestList, Token};
use std::ffi::c_int;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::time::Duration;

// ANCHOR: epoll_event
/// One event, as `epoll_wait` writes it and `epoll_ctl` reads it: C's
/// `struct epoll_event`, a 32-bit set of flags and 64 bits of our own,
/// which the kernel hands back untouched (we put the socket's token there).
///
/// On x86-64, and there only, Linux declares the struct *packed*: no
/// padding between the two fields, 12 bytes in all. Elsewhere `data` is
/// aligned to 8 bytes as usual, and the struct takes 16. Get this wrong and
/// every event after the first is read from the wrong place: the layout
/// test below checks both.
#[repr(C)]
#[cfg_attr(target_arch = "x86_64", repr(packed))]
#[derive(Debug, Clone, Copy)]
pub struct EpollEvent {
    /// What happened (from `epoll_wait`) or what we wait for (to `epoll_ctl`).
    events: u32,
    /// Our number for the socket: C's `epoll_data_t`, a union of 64 bits.
    data: u64,
}

/// There is something to read (as `POLLIN`).
const EPOLLIN: u32 = 0x001;
/// There is room to write (as `POLLOUT`).
const EPOLLOUT: u32 = 0x004;
/// An error on the socket; always reported, asked for or not.
const EPOLLERR: u32 = 0x008;
/// The connection is closed both ways; always reported, asked for or not.
const EPOLLHUP: u32 = 0x010;
/// Edge-triggered: report a socket when it *becomes* ready, not while it
/// is. This stage does not use it (see the chapter, and the tests below).
#[cfg(test)]
const EPOLLET: u32 = 1 << 31;

/// `epoll_ctl`'s operations.
const EPOLL_CTL_ADD: c_int = 1;
const EPOLL_CTL_DEL: c_int = 2;
const EPOLL_CTL_MOD: c_int = 3;

/// `epoll_create1`'s flag: close the epoll descriptor in programs we start
/// (`O_CLOEXEC`, the same value on x86, ARM and RISC-V).
const EPOLL_CLOEXEC: c_int = 0o2_000_000;
// ANCHOR_END: epoll_event

// ANCHOR: extern
unsafe extern "C" {
    /// `int epoll_create1(int flags);` Returns a new epoll instance's file
    /// descriptor, or -1 with `errno` set.
    fn epoll_create1(flags: c_int) -> c_int;

    /// `int epoll_ctl(int epfd, int op, int fd, struct epoll_event *event);`
    /// Adds `fd` to the interest list, changes what we wait for on it, or
    /// removes it (`op`). Returns 0, or -1 with `errno` set.
    fn epoll_ctl(epfd: c_int, op: c_int, fd: c_int, event: *mut EpollEvent) -> c_int;

    /// `int epoll_wait(int epfd, struct epoll_event *events, int maxevents,
    /// int timeout);` Sleeps until a socket of the list is ready or
    /// `timeout` milliseconds pass (-1: no limit), then writes up to
    /// `maxevents` events at `events`. Returns how many, or -1.
    fn epoll_wait(epfd: c_int, events: *mut EpollEvent, maxevents: c_int, timeout: c_int) -> c_int;
}
// ANCHOR_END: extern

/// The most events one wait returns. More ready sockets than this wait for
/// the next call: with level-triggered events they are still ready then,
/// and the kernel takes them in turn.
const MAX_EVENTS: usize = 1024;

// ANCHOR: epoll
/// An epoll instance: the kernel's interest list, and the array that
/// `epoll_wait` fills in. Dropping it closes its descriptor.
pub struct Epoll {
    fd: OwnedFd,
    ready: Vec<EpollEvent>,
}

impl Epoll {
    pub fn new() -> io::Result<Epoll> {
        // SAFETY: epoll_create1 takes no pointer. It returns a descriptor.
        let fd = unsafe { epoll_create1(EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just opened for us, and nothing else owns it:
        // the `OwnedFd` closes it once, when the `Epoll` is dropped.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let ready = vec![EpollEvent { events: 0, data: 0 }; MAX_EVENTS];
        Ok(Epoll { fd, ready })
    }

    /// One `epoll_ctl`: `op` on `socket`, waiting for `events`.
    fn control(&self, op: c_int, socket: BorrowedFd, events: u32, token: Token) -> io::Result<()> {
        let mut event = EpollEvent {
            events,
            data: token as u64,
        };
        // SAFETY: epoll_ctl reads one `struct epoll_event` at the pointer
        // (for EPOLL_CTL_DEL it reads nothing; kernels before 2.6.9 wanted
        // a pointer all the same). `event` is one, laid out as C's (see
        // `EpollEvent`), and lives until the call returns. Both descriptors
        // are open: we own one, and the other is borrowed for the call.
        let result = unsafe { epoll_ctl(self.fd.as_raw_fd(), op, socket.as_raw_fd(), &mut event) };
        if result < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// One `epoll_wait`: the events of the sockets that are ready, at most
    /// [`MAX_EVENTS`] of them.
    fn ready_events(&mut self, timeout: Option<Duration>) -> io::Result<&[EpollEvent]> {
        let timeout_ms: c_int = match timeout {
            // Rounded up, as for `poll` in stage 6.
            Some(timeout) => {
                c_int::try_from(timeout.as_nanos().div_ceil(1_000_000)).unwrap_or(c_int::MAX)
            }
            None => -1,
        };
        // SAFETY: epoll_wait writes at most `maxevents` entries at the
        // pointer, and `self.ready` has that many, laid out as C's `struct
        // epoll_event`, borrowed by nothing else until the call returns.
        let count = unsafe {
            epoll_wait(
                self.fd.as_raw_fd(),
                self.ready.as_mut_ptr(),
                self.ready.len() as c_int,
                timeout_ms,
            )
        };
        if count < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                return Ok(&[]); // a signal woke us: nothing is ready, wait again
            }
            return Err(error);
        }
        Ok(&self.ready[..count as usize])
    }
}
// ANCHOR_END: epoll

// ANCHOR: interest_list
/// What we wait for, in epoll's flags. No `EPOLLET`: level-triggered, so a
/// socket is reported for as long as it is ready, not once when it becomes
/// ready. Errors and hang-ups are reported whatever we ask.
fn flags(interest: Interest) -> u32 {
    let mut flags = 0;
    if interest.read {
        flags |= EPOLLIN;
    }
    if interest.write {
        flags |= EPOLLOUT;
    }
    flags
}

impl InterestList for Epoll {
    fn add(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()> {
        self.control(EPOLL_CTL_ADD, socket, flags(interest), token)
    }

    fn modify(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()> {
        self.control(EPOLL_CTL_MOD, socket, flags(interest), token)
    }

    fn delete(&mut self, socket: BorrowedFd) -> io::Result<()> {
        self.control(EPOLL_CTL_DEL, socket, 0, 0)
    }

    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()> {
        events.clear();
        for event in self.ready_events(timeout)? {
            // Copied out first: a field of a packed struct cannot be borrowed.
            let (flags, data) = (event.events, event.data);
            events.push(Event {
                token: data as Token,
                readable: flags & (EPOLLIN | EPOLLERR | EPOLLHUP) != 0,
                writable: flags & EPOLLOUT != 0,
            });
        }
        Ok(())
    }
}
// ANCHOR_END: interest_list

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsFd;

    /// A connected pair of sockets on loopback.
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let near = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (far, _) = listener.accept().unwrap();
        (near, far)
    }

    /// The tokens of the sockets ready within `timeout`.
    fn ready(epoll: &mut Epoll, timeout: Duration) -> Vec<Token> {
        let mut events = Vec::new();
        epoll.wait(&mut events, Some(timeout)).unwrap();
        events.iter().map(|event| event.token).collect()
    }

    const A_WHILE: Duration = Duration::from_millis(50);
    /// Long enough for bytes on loopback to arrive; a wait returns as soon
    /// as they do.
    const PATIENCE: Duration = Duration::from_secs(5);

    // ANCHOR: layout_test
    #[test]
    fn the_layout_is_c_struct_epoll_event() {
        // Packed on x86-64, the 64-bit `data` right after the 32-bit
        // `events`; the same on 32-bit x86, where a `u64` needs only 4-byte
        // alignment anyway.
        if cfg!(any(target_arch = "x86_64", target_arch = "x86")) {
            assert_eq!(std::mem::size_of::<EpollEvent>(), 12);
            assert_eq!(std::mem::offset_of!(EpollEvent, data), 4);
        } else {
            // Aligned: 4 bytes of padding before `data`.
            assert_eq!(std::mem::size_of::<EpollEvent>(), 16);
            assert_eq!(std::mem::offset_of!(EpollEvent, data), 8);
        }
        assert_eq!(std::mem::offset_of!(EpollEvent, events), 0);
    }
    // ANCHOR_END: layout_test

    // ANCHOR: only_the_ready
    #[test]
    fn only_the_ready_sockets_are_reported() {
        let mut epoll = Epoll::new().unwrap();
        let pairs: Vec<(TcpStream, TcpStream)> = (0..10).map(|_| pair()).collect();
        for (token, (near, _)) in pairs.iter().enumerate() {
            epoll.add(near.as_fd(), token, Interest::READ).unwrap();
        }
        assert_eq!(ready(&mut epoll, Duration::ZERO), []);
        (&pairs[7].1).write_all(b"hello").unwrap();
        assert_eq!(ready(&mut epoll, PATIENCE), [7]);
    }
    // ANCHOR_END: only_the_ready

    // ANCHOR: triggers
    #[test]
    fn level_triggered_reports_unread_bytes_again() {
        let (mut near, mut far) = pair();
        let mut epoll = Epoll::new().unwrap();
        epoll.add(near.as_fd(), 1, Interest::READ).unwrap();
        far.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(ready(&mut epoll, PATIENCE), [1]);
        near.read_exact(&mut [0; 10]).unwrap();
        // 90 bytes are still there: the socket is still ready, and said so.
        assert_eq!(ready(&mut epoll, A_WHILE), [1]);
    }

    #[test]
    fn edge_triggered_reports_unread_bytes_never_again() {
        let (mut near, mut far) = pair();
        let mut epoll = Epoll::new().unwrap();
        let read_edges = EPOLLIN | EPOLLET;
        epoll
            .control(EPOLL_CTL_ADD, near.as_fd(), read_edges, 1)
            .unwrap();
        far.write_all(&[b'x'; 100]).unwrap();
        assert_eq!(ready(&mut epoll, PATIENCE), [1]);
        near.read_exact(&mut [0; 10]).unwrap();
        // 90 bytes are still there, but nothing *changed*: no event. A loop
        // that read only once now sleeps, and the client waits for an
        // answer that never comes. (With edge-triggered events a reader
        // must read until `WouldBlock`, every time.)
        assert_eq!(ready(&mut epoll, A_WHILE), []);
        // New bytes are a change: the socket is reported again.
        far.write_all(b"more").unwrap();
        assert_eq!(ready(&mut epoll, PATIENCE), [1]);
    }
    // ANCHOR_END: triggers

    // ANCHOR: write_interest
    #[test]
    fn a_socket_is_writable_until_told_otherwise() {
        // Why a client waits for writing only while its output waits: a
        // socket with room in its buffer is writable, every time we ask.
        let (near, _far) = pair();
        let mut epoll = Epoll::new().unwrap();
        let both = Interest {
            read: true,
            write: true,
        };
        epoll.add(near.as_fd(), 3, both).unwrap();
        for _ in 0..3 {
            let mut events = Vec::new();
            epoll.wait(&mut events, Some(PATIENCE)).unwrap();
            let writable = Event {
                token: 3,
                readable: false,
                writable: true,
            };
            assert_eq!(events, [writable]);
        }
        // One epoll_ctl, and the kernel stops telling us.
        epoll.modify(near.as_fd(), 3, Interest::READ).unwrap();
        assert_eq!(ready(&mut epoll, A_WHILE), []);
    }
    // ANCHOR_END: write_interest

    // ANCHOR: closing
    #[test]
    fn a_closed_socket_leaves_the_interest_list_by_itself() {
        let (near, mut far) = pair();
        let mut epoll = Epoll::new().unwrap();
        epoll.add(near.as_fd(), 5, Interest::READ).unwrap();
        drop(near); // closes the descriptor: the kernel forgets the socket
        let _ = far.write_all(b"anyone?");
        assert_eq!(ready(&mut epoll, A_WHILE), []);
    }

    #[test]
    fn a_duplicate_keeps_a_closed_socket_in_the_list() {
        let (near, mut far) = pair();
        let mut epoll = Epoll::new().unwrap();
        epoll.add(near.as_fd(), 5, Interest::READ).unwrap();
        // `try_clone` is `dup(2)`: a second descriptor for the same socket.
        let duplicate = near.try_clone().unwrap();
        drop(near);
        far.write_all(b"anyone?").unwrap();
        // The kernel removes a socket from the list when its *last*
        // descriptor closes. One is still open: events go on coming, with
        // the token of a socket we closed.
        assert_eq!(ready(&mut epoll, PATIENCE), [5]);
        // And the list knows it by the closed descriptor's number, not the
        // duplicate's: it cannot be deleted any more, only closed away.
        let error = epoll.delete(duplicate.as_fd()).unwrap_err();
        assert_eq!(error.raw_os_error(), Some(2)); // ENOENT
        drop(duplicate);
        assert_eq!(ready(&mut epoll, A_WHILE), []);
    }
    // ANCHOR_END: closing

    #[test]
    fn a_waiting_connection_makes_a_listener_readable() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut epoll = Epoll::new().unwrap();
        epoll.add(listener.as_fd(), 0, Interest::READ).unwrap();
        assert_eq!(ready(&mut epoll, Duration::ZERO), []);
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        assert_eq!(ready(&mut epoll, PATIENCE), [0]);
    }
}
