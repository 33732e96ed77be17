//! Stage 6: the chat of stage 5, waiting with poll(2) instead of sleeping.
//!
//! Stage 5's loop sleeps when it has nothing to do, and then has to ask
//! every socket whether anything happened meanwhile. This one asks the
//! system to wake it when a socket is ready (see [`poll`]), and then looks
//! at those sockets only: an idle server uses no CPU, a message is handled
//! the moment it arrives, and ten thousand quiet clients cost nothing per
//! turn but their entries in `poll`'s array. Run it with
//! `cargo run -p step-06`, open http://127.0.0.1:8080 in two browser tabs,
//! and pick two names.

// First, so that every module after it can use `log!`.
#[macro_use]
pub mod log;

pub mod chat;
pub mod client;
pub mod handshake;
pub mod http;
pub mod json;
pub mod poll;
pub mod ws;

#[cfg(test)]
mod random;

use client::{Client, Limits};
use poll::{POLLIN, PollFd};
use std::io;
use std::net::TcpListener;
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
/// still waiting, so the listener stays ready: `poll` would return at once,
/// every time, and the loop would spin at full speed until a client left.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);
// ANCHOR_END: accept_pause

// ANCHOR: serve
/// Serves every client at once, forever, on this one thread.
pub fn serve(listener: TcpListener) -> io::Result<()> {
    // `accept` now returns at once, with `WouldBlock` if nobody is waiting.
    listener.set_nonblocking(true)?;
    let mut clients: Vec<Client> = Vec::new();
    // The array `poll` reads: the listener first, then each client's socket.
    let mut sockets: Vec<PollFd> = Vec::new();
    let mut accept_paused_until: Option<Instant> = None;
    loop {
        if accept_paused_until.is_some_and(|until| Instant::now() >= until) {
            accept_paused_until = None;
        }
        wait_for_sockets(&listener, accept_paused_until, &clients, &mut sockets)?;
        let now = Instant::now();
        // Each message, with the index of the client that sent it.
        let mut chat = Vec::new();
        // `sockets[index + 1]` is the entry of `clients[index]`: the listener
        // comes first, and nobody joins or leaves until the end of the turn.
        for (index, client) in clients.iter_mut().enumerate() {
            let time_is_up = client.deadline().is_some_and(|deadline| now >= deadline);
            if !sockets[index + 1].is_ready() && !time_is_up {
                continue; // nothing happened: no need to even look
            }
            let mut messages = Vec::new();
            client.receive(&mut messages);
            chat.extend(messages.into_iter().map(|message| (index, message)));
        }
        chat::handle(&chat, &mut clients);
        keep_within_memory_budget(&mut clients);
        chat::announce_departures(&mut clients);
        loop {
            for client in &mut clients {
                client.flush();
            }
            // Writing may have found a client gone (a reset, a broken pipe):
            // the others hear of it in this same turn.
            if !chat::announce_departures(&mut clients) {
                break;
            }
        }
        // Dropping a client closes its socket.
        clients.retain(|client| !client.is_closed());
        if sockets[0].is_ready()
            && let Err(error) = accept_new_clients(&listener, &mut clients)
        {
            log!("accept failed: {error}; trying again in {ACCEPT_PAUSE:?}");
            accept_paused_until = Some(Instant::now() + ACCEPT_PAUSE);
        }
    }
}
// ANCHOR_END: serve

// ANCHOR: wait_for_sockets
/// Sleeps until the listener or a client's socket is ready, or until the
/// nearest deadline: a client's, or the end of a pause in accepting.
fn wait_for_sockets(
    listener: &TcpListener,
    accept_paused_until: Option<Instant>,
    clients: &[Client],
    sockets: &mut Vec<PollFd>,
) -> io::Result<()> {
    // The same array each turn, refilled: no allocation once it is big enough.
    sockets.clear();
    let listen = if accept_paused_until.is_none() {
        POLLIN
    } else {
        0
    };
    sockets.push(PollFd::new(listener, listen));
    sockets.extend(clients.iter().map(Client::poll_fd));
    let deadlines = clients.iter().filter_map(Client::deadline);
    let nearest = deadlines.chain(accept_paused_until).min();
    let timeout = nearest.map(|deadline| deadline.saturating_duration_since(Instant::now()));
    poll::wait(sockets, timeout)?;
    Ok(())
}
// ANCHOR_END: wait_for_sockets

// ANCHOR: accept
/// Accepts everyone who is waiting to connect, without waiting for anyone.
/// Fails if `accept` does, for example with too many open files.
fn accept_new_clients(listener: &TcpListener, clients: &mut Vec<Client>) -> io::Result<()> {
    loop {
        match listener.accept() {
            Ok((stream, peer)) => match Client::new(stream, peer, LIMITS) {
                Ok(client) => clients.push(client),
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
fn keep_within_memory_budget(clients: &mut [Client]) {
    let mut total: usize = clients.iter().map(Client::memory).sum();
    while total > MEMORY_BUDGET {
        // A client already let go holds little now, and is not let go twice.
        let candidates = clients.iter_mut().filter(|client| client.can_be_shed());
        let Some(biggest) = candidates.max_by_key(|client| client.memory()) else {
            return;
        };
        total -= biggest.memory();
        biggest.shed();
    }
}
// ANCHOR_END: memory_budget
