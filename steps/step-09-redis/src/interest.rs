//! What the loop asks of the system, whichever system answers: watch these
//! sockets, each for reading, writing, both or neither, and tell me which
//! are ready. The answer names each socket by its [`Token`], a number the
//! loop chose when it added the socket.
//!
//! Two systems answer. On Linux, `epoll(7)` (see [`crate::epoll`]) keeps the
//! list of sockets and what we wait for on each (its *interest list*), and
//! tells us only about the ready ones. Everywhere else, [`crate::poll`]
//! keeps the list itself and hands the whole of it to `poll(2)` on every
//! wait, as stage 6 did. The loop cannot tell them apart.

use std::io;
use std::os::fd::BorrowedFd;
use std::time::Duration;

// ANCHOR: interest_list
/// The number the loop gives a socket when it adds it, and that comes back
/// with each of its events: for a client, the slot it has in
/// [`Clients`](crate::clients::Clients).
pub type Token = usize;

/// What the loop waits for on a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    pub read: bool,
    pub write: bool,
}

impl Interest {
    pub const NONE: Interest = Interest {
        read: false,
        write: false,
    };
    pub const READ: Interest = Interest {
        read: true,
        write: false,
    };
}

/// A socket that is ready: which one, and for what. An error or a hang-up
/// counts as readable: a read is what tells us about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
}

/// The sockets the loop waits for. Each call names a socket by its file
/// descriptor, which the caller keeps open from `add` to `delete`: the
/// list only borrows it.
pub trait InterestList {
    /// Starts watching `socket`: its events will carry `token`.
    fn add(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()>;
    /// Changes what we wait for on a socket already added.
    fn modify(&mut self, socket: BorrowedFd, token: Token, interest: Interest) -> io::Result<()>;
    /// Stops watching `socket`, before it is closed.
    fn delete(&mut self, socket: BorrowedFd) -> io::Result<()>;
    /// Sleeps until a socket is ready or `timeout` passes (`None`: for as
    /// long as it takes), and puts what is ready into `events`, emptied first.
    fn wait(&mut self, events: &mut Vec<Event>, timeout: Option<Duration>) -> io::Result<()>;
}
// ANCHOR_END: interest_list
