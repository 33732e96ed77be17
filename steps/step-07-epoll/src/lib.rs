//! Stage 7: the chat of stage 6, told by epoll(7) which sockets are ready.
//!
//! Stage 6's loop hands `poll` the list of every socket on every turn, and
//! the kernel walks all of it; so does the loop, several times. With ten
//! thousand quiet clients, that is most of what a message costs. This one
//! keeps the list in the kernel (see [`epoll`]): a socket is added once,
//! changed only when what we wait for changes, and each wait returns only
//! the sockets that are ready. A turn looks at those clients, at those
//! whose deadline has come, and at those the chat writes to (see
//! [`clients`]), never at the rest. Where there is no epoll (macOS, the
//! BSDs), it waits with stage 6's `poll` behind the same small interface
//! (see [`interest`]). Run it with `cargo run -p step-07`, open
//! http://127.0.0.1:8080 in two browser tabs, and pick two names.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod chat;
pub mod client;
pub mod clients;
#[cfg(target_os = "linux")]
pub mod epoll;
pub mod handshake;
pub mod http;
pub mod interest;
pub mod json;
pub mod poll;
pub mod ws;

#[cfg(test)]
mod random;

use client::{Client, Limits};
use clients::Clients;
use interest::{Interest, InterestList, Token};
use std::io;
use std::net::TcpListener;
use std::os::fd::AsFd;
use std::time::{Duration, Instant};

/// How long a client may take to send its whole request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long we wait, after our close frame, for the client to close too.
pub const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

// ANCHOR: max_chat_message_len
/// The largest chat message we accept, in bytes. The loop parses every
/// message's JSON on its one thread, and a 16 MiB document takes long enough
/// to parse (about a second) to stall everyone: a bigger message is refused
/// with close code 1009. Chat messages are small.
pub const MAX_CHAT_MESSAGE_LEN: usize = 64 * 1024;
// ANCHOR_END: max_chat_message_len

// ANCHOR: max_unsent
/// How far a client may fall behind: the most bytes we keep for it that its
/// socket has not taken yet. A client past this cannot keep up with the chat
/// (or stopped reading altogether), and is disconnected so that it does not
/// eat the server's memory. It leaves room for sixteen of the longest chat
/// messages (a message goes out about as long as it came in: JSON escapes
/// the same characters both ways).
pub const MAX_UNSENT_BYTES: usize = 16 * MAX_CHAT_MESSAGE_LEN;

/// The most memory the buffers of all clients together may hold. Each client
/// keeps to its own limits, but many clients within theirs could still hold
/// more than the machine can spare: past this, the clients
/// that hold the most are let go.
const MEMORY_BUDGET: usize = 32 * 1024 * 1024;
// ANCHOR_END: max_unsent

// ANCHOR: limits
/// What every client is allowed.
const LIMITS: Limits = Limits {
    request_timeout: REQUEST_TIMEOUT,
    close_timeout: CLOSE_TIMEOUT,
    max_message_len: MAX_CHAT_MESSAGE_LEN,
    max_unsent_bytes: MAX_UNSENT_BYTES,
};
// ANCHOR_END: limits

// ANCHOR: accept_pause
/// How long we stop accepting after `accept` fails, for example because the
/// process has run out of file descriptors. The connection it failed on is
/// still waiting, so the listener stays ready: the wait would return at
/// once, every time, and the loop would spin at full speed until a client
/// left.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
// ANCHOR_END: accept_pause

// ANCHOR: serve
// ANCHOR: backends
/// Serves every client at once, forever, on this one thread, waiting with
/// epoll where there is one (Linux), and with `poll` everywhere else.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return serve_with(listener, epoll::Epoll::new()?);
    #[cfg(not(target_os = "linux"))]
    serve_with(listener, poll::PollList::default())
}
// ANCHOR_END: backends

/// The listener's token: no client's, since no slab has that many slots.
const LISTENER: Token = Token::MAX;

/// Serves every client at once, forever, waiting for them with `sockets`:
/// an [`epoll::Epoll`], or a [`poll::PollList`] (the tests run every check
/// against both).
pub fn serve_with(listener: TcpListener, mut sockets: impl InterestList) -> io::Result<()> {
    // `accept` now returns at once, with `WouldBlock` if nobody is waiting.
    listener.set_nonblocking(true)?;
    sockets.add(listener.as_fd(), LISTENER, Interest::READ)?;
    let mut clients = Clients::default();
    // What the wait found ready: filled in by each wait, in no order.
    let mut ready = Vec::new();
    let mut accept_paused_until: Option<Instant> = None;
    loop {
        if accept_paused_until.is_some_and(|until| Instant::now() >= until) {
            accept_paused_until = None;
            sockets.modify(listener.as_fd(), LISTENER, Interest::READ)?;
        }
        wait_for_sockets(&mut sockets, &mut ready, accept_paused_until, &clients)?;
        let now = Instant::now();
        // Each message, with the token of the client that sent it.
        let mut chat = Vec::new();
        let mut new_clients_waiting = false;
        // Nobody joins or leaves until the end of the turn: every token
        // here is a client's that is still here, and still the same one.
        for event in &ready {
            if event.token == LISTENER {
                new_clients_waiting = true;
                continue;
            }
            // Taking the client marks it touched: it is flushed at the end
            // of the turn, which is all a writable socket needs.
            let client = &mut clients[event.token];
            if event.readable {
                let mut messages = Vec::new();
                client.receive(&mut messages);
                chat.extend(messages.into_iter().map(|message| (event.token, message)));
            }
        }
        // A client whose time is up is looked at, ready or not: `receive`
        // acts on it.
        for token in clients.due(now) {
            let mut messages = Vec::new();
            clients[token].receive(&mut messages);
            chat.extend(messages.into_iter().map(|message| (token, message)));
        }
        chat::handle(&chat, &mut clients);
        keep_within_memory_budget(&mut clients);
        chat::announce_departures(&mut clients);
        // Writing may find a client gone (a reset, a broken pipe): the
        // others hear of it in this same turn.
        clients.flush();
        while chat::announce_departures(&mut clients) {
            clients.flush();
        }
        // Brings up to date what the loop knows of the clients this turn
        // touched, and lets go of the closed.
        clients.end_turn(&mut sockets);
        if new_clients_waiting
            && let Err(error) = accept_new_clients(&listener, &mut clients, &mut sockets)
        {
            log!("accept failed: {error}; trying again in {ACCEPT_PAUSE:?}");
            accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
            sockets.modify(listener.as_fd(), LISTENER, Interest::NONE)?;
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: wait_for_sockets
/// Sleeps until the listener or a client's socket is ready, or until the
/// nearest deadline: a client's, or the end of a pause in accepting.
fn wait_for_sockets(
    sockets: &mut impl InterestList,
    ready: &mut Vec<interest::Event>,
    accept_paused_until: Option<Instant>,
    clients: &Clients,
) -> io::Result<()> {
    // The list is the system's now: nothing to build. The deadlines are in
    // order: the nearest is the first.
    let nearest = clients
        .next_deadline()
        .into_iter()
        .chain(accept_paused_until)
        .min();
    let timeout = nearest.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    sockets.wait(ready, timeout)
}
// ANCHOR_END: wait_for_sockets

// ANCHOR: accept
/// Accepts everyone who is waiting to connect, without waiting for anyone.
/// Fails if `accept` does, for example with too many open files.
fn accept_new_clients(
    listener: &TcpListener,
    clients: &mut Clients,
    sockets: &mut impl InterestList,
) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => match Client::new(stream, peer, LIMITS) {
                Ok(client) => {
                    if let Err(error) = clients.insert(client, sockets) {
                        log!("{peer}: cannot wait for its socket: {error}");
                    }
                }
                Err(error) => log!("{peer}: cannot serve: {error}"),
            },
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(error) => return Err(error),
        }
    }
}
// ANCHOR_END: accept

// ANCHOR: memory_budget
/// Keeps what all the clients' buffers hold within [`MEMORY_BUDGET`]: while
/// they hold more, the client that holds the most (the one furthest behind,
/// or with the biggest unfinished message) is let go.
fn keep_within_memory_budget(clients: &mut Clients) {
    // Kept up to date as clients change: no need to add it all up again.
    let mut total = clients.memory();
    while total > MEMORY_BUDGET {
        // Only past the budget, which is rare, do we look at every client.
        // A client already let go holds little now, and is not let go twice.
        let candidates = clients.iter().filter(|(_, client)| client.can_be_shed());
        let Some((biggest, _)) = candidates.max_by_key(|(_, client)| client.memory()) else {
            return;
        };
        total -= clients[biggest].memory();
        clients[biggest].shed();
    }
}
// ANCHOR_END: memory_budget
